// Turns on etcd's authentication for the registry, idempotently: the Job in etcd-auth.yaml runs it with the
// messaging-server image (node and the etcd3 client are in /app; the etcd image has etcdctl but no shell, and a
// chain of etcdctl steps cannot skip the ones already done). Every run leaves the same state, whatever was there:
//   - a `root` user (etcd needs one before it enables auth) with ETCD_ROOT_PASSWORD and the root role;
//   - a role MSG_ETCD_ROLE (default messaging-server) that may read and write MSG_ETCD_PREFIX and nothing else;
//   - the user MSG_ETCD_USERNAME with MSG_ETCD_PASSWORD (set again on every run: that is how it rotates) and that role;
//   - authentication enabled.
// Once auth is on, a rerun signs in as root; before, it talks to etcd anonymously. Exit 0 when done, 1 (the Job
// retries) when etcd is not there yet or refuses.
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(path.join(process.env.MSG_APP_DIR ?? process.cwd(), 'package.json'));
const { Etcd3, Range, EtcdRoleExistsError, EtcdUserExistsError } = require('etcd3');

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

const hosts = required('MSG_ETCD_ENDPOINTS').split(',').map((h) => h.trim()).filter(Boolean);
const prefix = required('MSG_ETCD_PREFIX');
const rootPassword = required('ETCD_ROOT_PASSWORD');
const username = required('MSG_ETCD_USERNAME');
const password = required('MSG_ETCD_PASSWORD');
const role = process.env.MSG_ETCD_ROLE ?? 'messaging-server';
const options = { hosts, dialTimeout: 3000, defaultCallOptions: () => ({ deadline: new Date(Date.now() + 5000) }) };

/** A client allowed to manage users: root once auth is on, anyone before. */
async function adminClient() {
  const asRoot = new Etcd3({ ...options, auth: { username: 'root', password: rootPassword } });
  try {
    await asRoot.getRoles();
    return asRoot;
  } catch (error) {
    asRoot.close();
    if (!/authentication is not enabled/i.test(String(error))) throw error;
    return new Etcd3(options);
  }
}

const ignore = (kind) => (error) => {
  if (!(error instanceof kind)) throw error;
};

async function main() {
  const etcd = await adminClient();
  try {
    await etcd.role('root').create().catch(ignore(EtcdRoleExistsError));
    await etcd.user('root').create(rootPassword).catch(ignore(EtcdUserExistsError));
    await etcd.user('root').addRole('root');
    await etcd.role(role).create().catch(ignore(EtcdRoleExistsError));
    await etcd.role(role).grant({ permission: 'Readwrite', range: Range.prefix(prefix) });
    await etcd.user(username).create(password).catch(ignore(EtcdUserExistsError));
    await etcd.user(username).setPassword(password);
    await etcd.user(username).addRole(role);
    await etcd.auth.authEnable();
    console.log(`etcd-auth: authentication on; ${username} may read and write ${prefix} (role ${role})`);
  } finally {
    etcd.close();
  }
}

main().catch((error) => {
  console.error(`etcd-auth: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
