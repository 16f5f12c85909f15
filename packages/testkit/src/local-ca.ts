import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface LocalCa {
  /** The CA certificate: trust it in a browser or pass it to a client (`curl --cacert`, undici `connect.ca`). */
  readonly caCert: string;
  /** The server certificate, signed by the CA, for the given addresses. */
  readonly serverCert: string;
  readonly serverKey: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd, timeout: 20_000 });
  } catch (error) {
    const detail = (error as { stderr?: string }).stderr?.trim() || (error as Error).message;
    throw new Error(`openssl ${args[0] ?? ''} failed: ${detail}`);
  }
}

/**
 * A throwaway certificate authority and one server certificate for `hosts` (IP addresses or DNS names), made with
 * Debian's openssl in `dir`. The CA's private key is deleted once the server certificate is signed, so the CA that
 * a developer trusts can never sign anything else.
 */
export async function createLocalCa(dir: string, hosts: readonly string[]): Promise<LocalCa> {
  await mkdir(dir, { recursive: true });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const stamp = new Date().toISOString().slice(0, 19);
  await openssl(
    ['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '30', '-subj', `/CN=messaging-server local CA ${stamp}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    dir,
  );
  await openssl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', `/CN=${hosts[0] ?? 'localhost'}`], dir);
  const names = hosts.map((host) => (isIP(host) ? `IP:${host}` : `DNS:${host}`)).join(',');
  await writeFile(
    join(dir, 'server.ext'),
    `subjectAltName=${names}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n`,
  );
  await openssl(
    ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '30', '-extfile', 'server.ext', '-out', 'server.crt'],
    dir,
  );
  await Promise.all(['ca.key', 'ca.srl', 'server.csr', 'server.ext'].map((file) => rm(join(dir, file), { force: true })));
  return { caCert: join(dir, 'ca.crt'), serverCert: join(dir, 'server.crt'), serverKey: join(dir, 'server.key') };
}
