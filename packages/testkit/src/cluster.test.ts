import { expect } from 'chai';
import { startCluster } from './cluster.js';

describe('LocalCluster', () => {
  it('runs the CLI it is given (the bench runs a baseline build this way), and names it when it is missing', async () => {
    const cli = '/nonexistent/baseline/packages/cli/dist/bin/messaging-server.js';
    // Checked before etcd or memcached start, so this starts no process.
    const error = await startCluster({ cli }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(Error);
    expect((error as Error).message).to.equal(`${cli} is missing: run \`make build\` first`);
  });
});
