import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findLocalCluster, withLocalCluster } from './local-cluster.js';

describe('msgctl beside `make run`', () => {
  let root: string;
  const state = {
    controlUrl: 'http://127.0.0.1:1',
    etcd: 'http://127.0.0.1:42379',
    etcdPrefix: '/messaging-server/',
    memcached: '127.0.0.1:41211',
    memcachedPrefix: 'messaging-server:',
  };
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'msgctl-local-'));
    mkdirSync(join(root, '.run'));
    mkdirSync(join(root, 'packages', 'cli'), { recursive: true });
    writeFileSync(join(root, '.run', 'cluster.json'), JSON.stringify(state));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('finds .run/cluster.json in the directory or any directory above it', () => {
    expect(findLocalCluster(root)?.etcd).to.equal(state.etcd);
    expect(findLocalCluster(join(root, 'packages', 'cli'))?.file).to.equal(join(root, '.run', 'cluster.json'));
    rmSync(join(root, '.run'), { recursive: true });
    expect(findLocalCluster(join(root, 'packages', 'cli'))).to.equal(undefined);
  });

  it('fills in etcd, memcached and both prefixes when nothing names an endpoint', () => {
    const { env, cluster } = withLocalCluster({ PATH: '/bin' }, root);
    expect(cluster?.file).to.equal(join(root, '.run', 'cluster.json'));
    expect(env).to.deep.equal({
      PATH: '/bin',
      MSG_ETCD_ENDPOINTS: state.etcd,
      MSG_ETCD_PREFIX: state.etcdPrefix,
      MSG_MEMCACHED_SERVERS: state.memcached,
      MSG_MEMCACHED_PREFIX: state.memcachedPrefix,
    });
  });

  it('keeps each setting that was given explicitly', () => {
    const { env } = withLocalCluster({ MSG_ETCD_PREFIX: '/mine/', MSG_MEMCACHED_SERVERS: '10.0.0.1:11211' }, root);
    expect(env).to.include({ MSG_ETCD_ENDPOINTS: state.etcd, MSG_ETCD_PREFIX: '/mine/', MSG_MEMCACHED_SERVERS: '10.0.0.1:11211' });
  });

  it('ignores the file entirely once an etcd endpoint is given (flag or MSG_ETCD_ENDPOINTS)', () => {
    const given = { MSG_ETCD_ENDPOINTS: 'http://etcd.prod:2379' };
    expect(withLocalCluster(given, root)).to.deep.equal({ env: given });
  });

  it('ignores a file that is not a cluster description', () => {
    writeFileSync(join(root, '.run', 'cluster.json'), '{"half":');
    expect(withLocalCluster({}, root)).to.deep.equal({ env: {} });
  });
});
