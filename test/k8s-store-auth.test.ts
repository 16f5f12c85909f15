// Issue 28, the production overlay's stores with credentials, as rendered. Before, gateways and nodes asked for store
// credentials (Secret msg-store-credentials) while etcd and memcached took anyone: production pods could not have
// worked, and the stores were open to any pod that reached them.
// - memcached runs with SASL (-S) and the official image's own password file (MEMCACHED_SASL_PWDB, from the Secret);
// - the etcd-auth Job's script, taken from the rendered ConfigMap and run with the Job's environment against a real
//   etcd, turns users and roles on, twice over without a change, and rotates the messaging user's password;
// - the Job reaches etcd through the network policy; nothing else besides gateways, nodes and members does.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import { startEtcd, type EtcdServer } from '@messaging-server/testkit';
import { K8S, renderWithInputs, type K8sObject } from './support/k8s-render.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The Secret as docs/operations.md has the operator make it. */
const SECRET: Record<string, string> = {
  'etcd-root-password': 'root-Vd9kq2LmX8pZ4tR7wB1nC5',
  'etcd-username': 'msg',
  'etcd-password': 'etcd-Qf3hJ8sK1vN6yT2mW9pL4x',
  'memcached-username': 'msg',
  'memcached-password': 'mc-Zr7tB2kQ9wX4nM1vH6cJ8s',
};

const podSpec = (o: K8sObject): NonNullable<IPodTemplateSpec['spec']> => {
  const spec = (o['spec'] as { template: IPodTemplateSpec }).template.spec;
  if (!spec) throw new Error(`${o.kind}/${o.metadata.name} has no pod spec`);
  return spec;
};

/** The container's environment with Secret references resolved from SECRET (literal values as rendered). */
function environmentOf(container: IContainer): Record<string, string> {
  const env: Record<string, string> = {};
  for (const variable of container.env ?? []) {
    const ref = variable.valueFrom?.secretKeyRef;
    if (ref) {
      expect(ref.name, variable.name).to.equal('msg-store-credentials');
      const value = SECRET[ref.key];
      if (value === undefined) throw new Error(`${variable.name}: the Secret as documented has no key ${ref.key}`);
      env[variable.name] = value;
    } else if (variable.value !== undefined) env[variable.name] = variable.value;
    else throw new Error(`${variable.name}: neither a value nor a Secret key`);
  }
  return env;
}

describe('production overlay: etcd with users and roles, memcached with SASL (issue 28)', function () {
  this.timeout(120_000);
  const dir = path.join(K8S, 'overlays', 'production');
  let objects: K8sObject[];
  const find = (kind: string, name: string): K8sObject => {
    const found = objects.find((o) => o.kind === kind && (o.metadata.name === name || o.metadata.name.startsWith(`${name}-`)));
    if (!found) throw new Error(`${kind}/${name} is not in the production render`);
    return found;
  };

  before(function () {
    objects = renderWithInputs(dir);
  });

  it('runs memcached with -S and the password file from the Secret, Cyrus SASL limited to PLAIN', function () {
    const memcached = find('Deployment', 'memcached');
    const spec = podSpec(memcached);
    const container = spec.containers.find((c) => c.name === 'memcached');
    // The official image (docker-library) is configured with --enable-sasl --enable-sasl-pwdb.
    expect(container?.image).to.match(/^memcached:1\.6/);
    expect(container?.args).to.include('-S');
    const env = Object.fromEntries((container?.env ?? []).map((v) => [v.name, v.value]));
    const mountOf = (file: string) => {
      const mount = (container?.volumeMounts ?? []).find((m) => file.startsWith(`${m.mountPath}/`) || file === m.mountPath);
      return { mount, volume: spec.volumes?.find((v) => v.name === mount?.name) };
    };
    const pwdb = mountOf(env['MEMCACHED_SASL_PWDB'] ?? '');
    expect(pwdb.mount?.readOnly).to.equal(true);
    expect(pwdb.volume?.secret?.secretName).to.equal('msg-store-credentials');
    const item = pwdb.volume?.secret?.items?.find((i) => path.posix.join(pwdb.mount?.mountPath ?? '', i.path) === env['MEMCACHED_SASL_PWDB']);
    expect(item?.key).to.equal('memcached-sasl-pwdb');
    // Readable by memcached's group, nobody else; the files' group is the pod's fsGroup.
    expect(pwdb.volume?.secret?.defaultMode).to.equal(0o440);
    expect(spec.securityContext?.fsGroup).to.equal(spec.securityContext?.runAsGroup);
    const conf = mountOf(`${env['SASL_CONF_PATH'] ?? ''}/memcached.conf`);
    const configMap = find('ConfigMap', conf.volume?.configMap?.name?.replace(/-[a-z0-9]{10}$/, '') ?? '?');
    expect((configMap['data'] as Record<string, string>)['memcached.conf']).to.equal('mech_list: plain\n');
    // The gateways and nodes log in with the same user the password file names (docs/operations.md says how).
    for (const [kind, name, c] of [['Deployment', 'msg-gateway', 'gateway'], ['StatefulSet', 'msg-node', 'node']] as const) {
      const client = podSpec(find(kind, name)).containers.find((x) => x.name === c);
      const keys = Object.fromEntries((client?.env ?? []).map((v) => [v.name, v.valueFrom?.secretKeyRef?.key]));
      expect(keys, name).to.include({ MSG_MEMCACHED_USERNAME: 'memcached-username', MSG_MEMCACHED_PASSWORD: 'memcached-password', MSG_ETCD_USERNAME: 'etcd-username', MSG_ETCD_PASSWORD: 'etcd-password' });
    }
  });

  describe('the etcd-auth Job, run against a real etcd', function () {
    let etcd: EtcdServer;
    let work: string;
    before(async function () {
      etcd = await startEtcd();
      work = mkdtempSync(path.join(tmpdir(), 'msg-etcd-auth-'));
    });
    after(async () => {
      await etcd?.remove();
      if (work) rmSync(work, { recursive: true, force: true });
    });

    /** Runs the Job's one container as rendered: its command on the script from its ConfigMap, its environment. */
    async function runJob(overrides: Record<string, string> = {}): Promise<string> {
      const job = find('Job', 'etcd-auth');
      const spec = podSpec(job);
      expect(spec.automountServiceAccountToken).to.equal(false);
      expect(spec.restartPolicy).to.equal('OnFailure');
      const [container] = spec.containers;
      if (!container) throw new Error('the Job has no container');
      const mount = container.volumeMounts?.find((m) => (container.command?.[1] ?? '').startsWith(`${m.mountPath}/`));
      const configMapName = spec.volumes?.find((v) => v.name === mount?.name)?.configMap?.name ?? '?';
      const script = (find('ConfigMap', configMapName)['data'] as Record<string, string>)[path.basename(container.command?.[1] ?? '')];
      expect(script, 'the script the Job runs').to.be.a('string');
      writeFileSync(path.join(work, 'etcd-auth.mjs'), script ?? '');
      expect(container.command?.[0]).to.equal('node');
      expect(container.workingDir).to.equal('/app');
      const env = { ...environmentOf(container), MSG_ETCD_ENDPOINTS: etcd.endpoint, MSG_APP_DIR: ROOT, ...overrides };
      const { stdout } = await run('node', [path.join(work, 'etcd-auth.mjs')], { env: { PATH: process.env['PATH'] ?? '', ...env }, timeout: 30_000 });
      return stdout;
    }

    async function etcdctl(user: string | undefined, ...args: string[]): Promise<string> {
      const auth = user === undefined ? [] : ['--user', user];
      try {
        const { stdout } = await run('etcdctl', ['--endpoints', etcd.endpoint, '--command-timeout=3s', ...auth, ...args]);
        return stdout.trim();
      } catch (error) {
        return `refused: ${String((error as { stderr?: string }).stderr ?? error)}`;
      }
    }

    it('turns authentication on: the messaging user may use its prefix only, anyone else is refused', async function () {
      const prefix = (podSpec(find('Job', 'etcd-auth')).containers[0]?.env ?? []).find((v) => v.name === 'MSG_ETCD_PREFIX')?.value ?? '?';
      expect(prefix).to.equal((find('ConfigMap', 'msg-config')['data'] as Record<string, string>)['MSG_ETCD_PREFIX']);
      expect(await etcdctl(undefined, 'put', `${prefix}before`, '1')).to.equal('OK');
      expect(await runJob()).to.match(/authentication on/);
      const user = `${SECRET['etcd-username'] ?? ''}:${SECRET['etcd-password'] ?? ''}`;
      expect(await etcdctl(user, 'put', `${prefix}nodes/n1`, 'x')).to.equal('OK');
      expect(await etcdctl(user, 'get', `${prefix}before`, '--print-value-only')).to.equal('1');
      expect(await etcdctl(user, 'put', '/elsewhere', 'x')).to.match(/refused: .*permission denied/);
      expect(await etcdctl(undefined, 'get', `${prefix}nodes/n1`)).to.match(/refused: .*user name is empty/);
      expect(await etcdctl(`${SECRET['etcd-username'] ?? ''}:wrong`, 'get', `${prefix}nodes/n1`)).to.match(/refused: .*authentication failed/);
      expect(await etcdctl(undefined, 'put', `${prefix}nodes/forged`, 'x')).to.match(/refused/);
    });

    it('is idempotent, and a rerun with a new password rotates the messaging user', async function () {
      const prefix = '/messaging-server/';
      expect(await runJob()).to.match(/authentication on/);
      const root = `root:${SECRET['etcd-root-password'] ?? ''}`;
      expect(await etcdctl(root, 'user', 'get', SECRET['etcd-username'] ?? '')).to.match(/Roles: messaging-server$/);
      expect(await etcdctl(root, 'role', 'get', 'messaging-server')).to.contain(`[${prefix}, `);
      const rotated = 'etcd-rotated-Hn4wE7pX2cV9kB5q';
      expect(await runJob({ MSG_ETCD_PASSWORD: rotated })).to.match(/authentication on/);
      expect(await etcdctl(`${SECRET['etcd-username'] ?? ''}:${rotated}`, 'get', `${prefix}nodes/n1`, '--print-value-only')).to.equal('x');
      expect(await etcdctl(`${SECRET['etcd-username'] ?? ''}:${SECRET['etcd-password'] ?? ''}`, 'get', `${prefix}nodes/n1`)).to.match(/refused: .*authentication failed/);
    });
  });
});
