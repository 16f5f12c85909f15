import { hostname } from 'node:os';
import { expect } from 'chai';
import { CONFIG_FIELDS, ConfigError, configVariables, loadConfig, originAllowed, type ProcessKind } from './config.js';

function problemsOf(kind: ProcessKind, env: Record<string, string>): string[] {
  try {
    loadConfig(kind, env);
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error(`expected ${JSON.stringify(env)} to be rejected`);
}

describe('loadConfig', () => {
  describe('defaults', () => {
    it('gives a gateway the contract defaults and nothing node-specific', () => {
      const config = loadConfig('gateway', {});
      expect(config).to.deep.equal({
        etcdEndpoints: ['http://127.0.0.1:2379'],
        etcdPrefix: '/messaging-server/',
        memcachedServers: ['127.0.0.1:11211'],
        memcachedPrefix: 'ms:',
        host: '0.0.0.0',
        port: 8080,
        leaseTtlSeconds: 5,
        handshakeTimeoutSeconds: 30,
        sessionConflict: 'replace',
        logLevel: 'info',
        production: false,
        allowedOrigins: ['*'],
        connectRatePerIpPerMinute: 0,
        turnTtlSeconds: 86400,
        authMaxTokenAgeSeconds: 3600,
      });
    });

    it('gives a node port 8081, internal port 9081 and addresses derived from them', () => {
      const config = loadConfig('node', {});
      expect(config).to.include({
        port: 8081,
        internalPort: 9081,
        nodeId: `${hostname()}-8081`,
        publicUrl: 'http://127.0.0.1:8081/ws',
        internalUrl: 'http://127.0.0.1:9081',
        sessionTtlSeconds: 120,
        handshakeTimeoutSeconds: 30,
        pendingTtlMs: 10000,
        pendingMax: 256,
        maxMessageBytes: 65536,
        drainTimeoutSeconds: 25,
        drainRatePerSecond: 1000,
        rateMessagesPerSecond: 1000,
        rateBurst: 2000,
        leaseTtlSeconds: 5,
      });
      expect(config).to.not.have.property('clusterSecret');
      expect(config).to.not.have.property('sessionConflict');
    });

    it('gives standalone one port for everything, with gateway and node settings', () => {
      const config = loadConfig('standalone', {});
      expect(config).to.include({
        port: 8080,
        publicUrl: 'http://127.0.0.1:8080/ws',
        internalUrl: 'http://127.0.0.1:8080',
        nodeId: `${hostname()}-8080`,
        sessionConflict: 'replace',
        sessionTtlSeconds: 120,
      });
    });

    it('leaves optional secrets unset rather than empty', () => {
      const config = loadConfig('standalone', { MSG_CLUSTER_SECRET: '', MSG_AUTH_JWT_SECRET: '' });
      expect(config).to.not.have.property('clusterSecret');
      expect(config).to.not.have.property('authJwtSecret');
      expect(config).to.not.have.property('authJwksUrl');
    });

    it('returns a frozen object', () => {
      const config = loadConfig('node', {});
      expect(Object.isFrozen(config)).to.equal(true);
    });
  });

  describe('coercion and parsing', () => {
    it('turns numeric strings into numbers', () => {
      const config = loadConfig('node', {
        MSG_PORT: '9000',
        MSG_INTERNAL_PORT: '9001',
        MSG_LEASE_TTL_SECONDS: '2',
        MSG_PENDING_TTL_MS: '2500',
        MSG_RATE_BURST: '10',
      });
      expect(config).to.include({ port: 9000, internalPort: 9001, leaseTtlSeconds: 2, pendingTtlMs: 2500, rateBurst: 10 });
      expect(config.port).to.be.a('number');
    });

    it('splits comma-separated lists', () => {
      const config = loadConfig('gateway', {
        MSG_ETCD_ENDPOINTS: 'http://10.0.0.1:2379,http://10.0.0.2:2379,http://10.0.0.3:2379',
        MSG_MEMCACHED_SERVERS: 'mc-0:11211,mc-1:11211',
      });
      expect(config.etcdEndpoints).to.deep.equal(['http://10.0.0.1:2379', 'http://10.0.0.2:2379', 'http://10.0.0.3:2379']);
      expect(config.memcachedServers).to.deep.equal(['mc-0:11211', 'mc-1:11211']);
      expect(loadConfig('gateway', { MSG_MEMCACHED_SERVERS: 'one:1' }).memcachedServers).to.deep.equal(['one:1']);
    });

    it('keeps strings, secrets and enums as given', () => {
      const config = loadConfig('standalone', {
        MSG_ETCD_PREFIX: '/other/',
        MSG_MEMCACHED_PREFIX: 'x:',
        MSG_HOST: '127.0.0.1',
        MSG_CLUSTER_SECRET: 'shh',
        MSG_AUTH_JWT_SECRET: 'jwt-secret',
        MSG_AUTH_JWKS_URL: 'https://issuer.example/.well-known/jwks.json',
        MSG_SESSION_CONFLICT: 'reject',
        MSG_LOG_LEVEL: 'debug',
      });
      expect(config).to.include({
        etcdPrefix: '/other/',
        memcachedPrefix: 'x:',
        host: '127.0.0.1',
        clusterSecret: 'shh',
        authJwtSecret: 'jwt-secret',
        authJwksUrl: 'https://issuer.example/.well-known/jwks.json',
        sessionConflict: 'reject',
        logLevel: 'debug',
      });
    });

    it('treats an empty variable as unset', () => {
      expect(loadConfig('node', { MSG_PORT: '', MSG_LOG_LEVEL: '' })).to.include({ port: 8081, logLevel: 'info' });
    });

    it('accepts the bounds of each range', () => {
      expect(loadConfig('node', { MSG_PORT: '0', MSG_DRAIN_TIMEOUT_SECONDS: '0', MSG_SESSION_TTL_SECONDS: '3' })).to.include({
        port: 0,
        drainTimeoutSeconds: 0,
        sessionTtlSeconds: 3,
      });
      expect(loadConfig('node', { MSG_PORT: '65535' }).port).to.equal(65535);
    });
  });

  describe('derived defaults', () => {
    it('derive node id and public URL from the chosen port, internal URL from the internal port', () => {
      const config = loadConfig('node', { MSG_PORT: '8181', MSG_INTERNAL_PORT: '9191' });
      expect(config).to.include({
        nodeId: `${hostname()}-8181`,
        publicUrl: 'http://127.0.0.1:8181/ws',
        internalUrl: 'http://127.0.0.1:9191',
      });
    });

    it('derive the standalone internal URL from its single port', () => {
      expect(loadConfig('standalone', { MSG_PORT: '7000' }).internalUrl).to.equal('http://127.0.0.1:7000');
    });

    it('derive the public URL from MSG_PUBLIC_BASE_URL and the node id: one path per node behind the proxy', () => {
      const config = loadConfig('node', { MSG_NODE_ID: 'msg-node-3', MSG_PUBLIC_BASE_URL: 'https://signaling.example.com/' });
      expect(config.publicUrl).to.equal('https://signaling.example.com/n/msg-node-3/ws');
      const prefixed = loadConfig('node', { MSG_NODE_ID: 'node-1', MSG_PUBLIC_BASE_URL: 'https://example.com/chat' });
      expect(prefixed.publicUrl).to.equal('https://example.com/chat/n/node-1/ws');
      const explicit = loadConfig('node', { MSG_PUBLIC_BASE_URL: 'https://example.com', MSG_PUBLIC_URL: 'https://other.example/ws' });
      expect(explicit.publicUrl).to.equal('https://other.example/ws');
    });

    it('refuse a base URL with a query, and a node id that is no plain path segment', () => {
      expect(problemsOf('node', { MSG_NODE_ID: 'n1', MSG_PUBLIC_BASE_URL: 'https://example.com/?x=1' })[0]).to.match(/^MSG_PUBLIC_BASE_URL must be/);
      expect(problemsOf('node', { MSG_NODE_ID: 'a/b', MSG_PUBLIC_BASE_URL: 'https://example.com' })[0]).to.match(/^MSG_NODE_ID must be/);
    });

    it('derive the drain rate from the connection limit and the drain timeout, so a full node drains in time', () => {
      expect(loadConfig('node', {}).drainRatePerSecond).to.equal(1000);
      expect(loadConfig('node', { MSG_MAX_CONNECTIONS: '50000', MSG_DRAIN_TIMEOUT_SECONDS: '50' }).drainRatePerSecond).to.equal(1250);
      // Never below 100/s, also without a limit or without a drain timeout.
      expect(loadConfig('node', { MSG_MAX_CONNECTIONS: '1000' }).drainRatePerSecond).to.equal(100);
      expect(loadConfig('node', { MSG_MAX_CONNECTIONS: '0' }).drainRatePerSecond).to.equal(100);
      expect(loadConfig('node', { MSG_DRAIN_TIMEOUT_SECONDS: '0' }).drainRatePerSecond).to.equal(100);
      expect(loadConfig('node', { MSG_DRAIN_RATE_PER_SECOND: '7' }).drainRatePerSecond).to.equal(7);
    });

    it('yield to explicit values', () => {
      const config = loadConfig('node', {
        MSG_PORT: '8181',
        MSG_NODE_ID: 'node-a',
        MSG_PUBLIC_URL: 'https://chat.example/ws',
        MSG_INTERNAL_URL: 'http://node-a.internal:9081',
      });
      expect(config).to.include({ nodeId: 'node-a', publicUrl: 'https://chat.example/ws', internalUrl: 'http://node-a.internal:9081' });
    });
  });

  describe('invalid values', () => {
    const cases: Array<[ProcessKind, string, string]> = [
      ['gateway', 'MSG_PORT', 'abc'],
      ['gateway', 'MSG_PORT', '70000'],
      ['gateway', 'MSG_PORT', '-1'],
      ['gateway', 'MSG_PORT', '80.5'],
      ['node', 'MSG_INTERNAL_PORT', 'nine'],
      ['gateway', 'MSG_LEASE_TTL_SECONDS', '0'],
      ['node', 'MSG_SESSION_TTL_SECONDS', '2'],
      ['node', 'MSG_PENDING_TTL_MS', '0'],
      ['node', 'MSG_MAX_MESSAGE_BYTES', '10'],
      ['node', 'MSG_PENDING_MAX', '1e9'],
      ['node', 'MSG_RATE_BURST', 'lots'],
      ['node', 'MSG_PUBLIC_URL', 'ftp://example/ws'],
      ['node', 'MSG_INTERNAL_URL', 'not a url'],
      ['gateway', 'MSG_AUTH_JWKS_URL', 'jwks.json'],
      ['gateway', 'MSG_SESSION_CONFLICT', 'maybe'],
      ['gateway', 'MSG_LOG_LEVEL', 'verbose'],
      ['gateway', 'MSG_ETCD_ENDPOINTS', 'http://a:2379, http://b:2379'],
      ['gateway', 'MSG_MEMCACHED_SERVERS', 'a:1,,b:2'],
      ['gateway', 'MSG_MEMCACHED_SERVERS', ','],
    ];
    for (const [kind, variable, value] of cases) {
      it(`${variable}=${JSON.stringify(value)} is a ConfigError naming ${variable}`, () => {
        const problems = problemsOf(kind, { [variable]: value });
        expect(problems).to.have.length(1);
        expect(problems[0]).to.include(variable);
        expect(problems[0]).to.include(JSON.stringify(value));
      });
    }

    it('reports every invalid variable at once, in the error message too', () => {
      let caught: unknown;
      try {
        loadConfig('standalone', { MSG_PORT: 'x', MSG_LOG_LEVEL: 'loud', MSG_RATE_BURST: '0', MSG_HOST: 'fine' });
      } catch (error) {
        caught = error;
      }
      expect(caught).to.be.instanceOf(ConfigError);
      const error = caught as ConfigError;
      expect(error.problems).to.have.length(3);
      for (const variable of ['MSG_PORT', 'MSG_LOG_LEVEL', 'MSG_RATE_BURST']) {
        expect(error.problems.some((p) => p.includes(variable)), variable).to.equal(true);
        expect(error.message).to.include(variable);
      }
    });

    it('says what a valid value looks like', () => {
      expect(problemsOf('gateway', { MSG_PORT: 'x' })[0]).to.match(/port number/);
      expect(problemsOf('gateway', { MSG_SESSION_CONFLICT: 'x' })[0]).to.include('replace, reject');
      expect(problemsOf('gateway', { MSG_LEASE_TTL_SECONDS: '0' })[0]).to.match(/integer from 1 to 3600/);
    });

    it('ignores variables the process kind does not read, and unknown ones', () => {
      const config = loadConfig('gateway', { MSG_INTERNAL_PORT: 'garbage', MSG_RATE_BURST: '-5', MSG_WHATEVER: 'x' });
      expect(config).to.not.have.property('internalPort');
      expect(config).to.not.have.property('rateBurst');
      expect(() => loadConfig('node', { MSG_SESSION_CONFLICT: 'maybe' })).to.not.throw();
    });
  });

  describe('configVariables', () => {
    it('lists every contract variable, and per kind only what that kind reads', () => {
      const all = configVariables();
      expect(all).to.have.length(CONFIG_FIELDS.length);
      expect(all).to.include.members(['MSG_ETCD_ENDPOINTS', 'MSG_CLUSTER_SECRET', 'MSG_AUTH_JWKS_URL', 'MSG_LOG_LEVEL']);
      expect(configVariables('gateway')).to.include('MSG_SESSION_CONFLICT').and.not.include('MSG_INTERNAL_PORT');
      expect(configVariables('node')).to.include('MSG_INTERNAL_PORT').and.not.include('MSG_AUTH_JWT_SECRET');
      expect(configVariables('standalone')).to.have.length(all.length);
    });
  });

  describe('TURN variables', () => {
    const secret = { MSG_TURN_SECRET: 's3cret' };
    it('reads TURN URLs, secret and TTL for gateways, with a one-day TTL by default', () => {
      const config = loadConfig('gateway', { ...secret, MSG_TURN_URLS: 'turn:turn.example:3478,stun:stun.example' });
      expect(config).to.include({ turnSecret: 's3cret', turnTtlSeconds: 86400 });
      expect(config.turnUrls).to.deep.equal(['turn:turn.example:3478', 'stun:stun.example']);
      expect(loadConfig('gateway', { ...secret, MSG_TURN_URLS: 'turns:t:5349', MSG_TURN_TTL_SECONDS: '600' }).turnTtlSeconds).to.equal(600);
      expect(configVariables('node')).to.not.include('MSG_TURN_SECRET');
    });

    it('accepts STUN URLs without a secret', () => {
      expect(loadConfig('gateway', { MSG_TURN_URLS: 'stun:stun.example:3478' }).turnUrls).to.deep.equal(['stun:stun.example:3478']);
    });

    it('refuses TURN URLs without a secret, a secret without URLs, other schemes and a TTL under a minute', () => {
      expect(problemsOf('gateway', { MSG_TURN_URLS: 'turn:t:3478' })[0]).to.match(/MSG_TURN_SECRET is unset/);
      expect(problemsOf('gateway', secret)[0]).to.match(/MSG_TURN_URLS is not/);
      expect(problemsOf('gateway', { ...secret, MSG_TURN_URLS: 'http://t:3478' })[0]).to.match(/MSG_TURN_URLS entries must be/);
      expect(problemsOf('gateway', { ...secret, MSG_TURN_URLS: 'turn:t', MSG_TURN_TTL_SECONDS: '10' })[0]).to.contain('MSG_TURN_TTL_SECONDS');
    });
  });

  describe('hardening variables', () => {
    it('gives nodes byte rate, connection and idle limits by default', () => {
      expect(loadConfig('node', {})).to.include({
        rateBytesPerSecond: 1_048_576,
        rateBytesBurst: 4_194_304,
        maxConnections: 20_000,
        idleTimeoutSeconds: 300,
        production: false,
      });
    });

    it('reads origins, per-IP /connect limit and trusted proxies for gateways', () => {
      const config = loadConfig('gateway', {
        MSG_ALLOWED_ORIGINS: 'https://app.example.com,http://localhost:3000',
        MSG_CONNECT_RATE_PER_IP_PER_MINUTE: '60',
        MSG_TRUSTED_PROXIES: '10.0.0.0/8,::1,192.168.1.7',
      });
      expect(config.allowedOrigins).to.deep.equal(['https://app.example.com', 'http://localhost:3000']);
      expect(config.connectRatePerIpPerMinute).to.equal(60);
      expect(config.trustedProxies).to.deep.equal(['10.0.0.0/8', '::1', '192.168.1.7']);
    });

    it('rejects proxies that are not IPs or CIDRs and origins with a path', () => {
      const problems = problemsOf('gateway', { MSG_TRUSTED_PROXIES: '10.0.0.0/33,proxy.local', MSG_ALLOWED_ORIGINS: 'https://a.example/x' });
      expect(problems.join('\n')).to.match(/MSG_TRUSTED_PROXIES.*10\.0\.0\.0\/33, proxy\.local/).and.match(/MSG_ALLOWED_ORIGINS/);
    });

    // 32 random bytes, as `openssl rand -base64 32` prints them.
    const STRONG = 'q3Jm0v8Yt4ZkQe9Rw1Lx5Np7Hb2Cd6Fg8Sj0Ua3Vi5T=';
    const STORES = { MSG_ETCD_USERNAME: 'msg', MSG_ETCD_PASSWORD: STRONG, MSG_MEMCACHED_USERNAME: 'msg', MSG_MEMCACHED_PASSWORD: STRONG };
    const SECURE_NODE = { MSG_CLUSTER_SECRET: STRONG, MSG_ALLOWED_ORIGINS: 'https://app.example.com', ...STORES };
    const SECURE_GATEWAY = { MSG_AUTH_JWKS_URL: 'https://auth.example.com/jwks.json', MSG_ALLOWED_ORIGINS: 'https://app.example.com', MSG_TRUSTED_PROXIES: '10.0.0.0/8', ...STORES };
    const STORES_REQUIRED = [
      'MSG_ETCD_USERNAME and MSG_ETCD_PASSWORD are required in production mode (MSG_PRODUCTION or NODE_ENV=production)',
      'MSG_MEMCACHED_USERNAME and MSG_MEMCACHED_PASSWORD are required in production mode (MSG_PRODUCTION or NODE_ENV=production)',
    ];

    it('refuses a clustered process without etcd and memcached credentials in production mode, naming them (issue 28)', () => {
      for (const kind of ['node', 'gateway'] as const) {
        const secure = kind === 'node' ? SECURE_NODE : SECURE_GATEWAY;
        const { MSG_ETCD_USERNAME: _u, MSG_ETCD_PASSWORD: _p, MSG_MEMCACHED_USERNAME: _mu, MSG_MEMCACHED_PASSWORD: _mp, ...open } = secure;
        expect(problemsOf(kind, { MSG_PRODUCTION: 'true', ...open }), kind).to.deep.equal(STORES_REQUIRED);
        expect(problemsOf(kind, { MSG_PRODUCTION: 'true', ...open, MSG_ETCD_USERNAME: 'msg', MSG_ETCD_PASSWORD: STRONG }), kind).to.deep.equal([STORES_REQUIRED[1]]);
        // Local runs and tests stay open.
        expect(loadConfig(kind, open).production, kind).to.equal(false);
      }
      // Standalone keeps its registry and sessions in memory: no store to protect.
      const standalone = { MSG_PRODUCTION: 'true', ...SECURE_NODE, ...SECURE_GATEWAY, MSG_ETCD_USERNAME: '', MSG_ETCD_PASSWORD: '', MSG_MEMCACHED_USERNAME: '', MSG_MEMCACHED_PASSWORD: '' };
      expect(loadConfig('standalone', standalone).production).to.equal(true);
    });

    it('refuses a node without cluster secret or with any origin in production mode, by flag or NODE_ENV', () => {
      expect(problemsOf('node', { MSG_PRODUCTION: 'true' })).to.deep.equal([
        'MSG_CLUSTER_SECRET is required in production mode (MSG_PRODUCTION or NODE_ENV=production)',
        ...STORES_REQUIRED,
        'MSG_ALLOWED_ORIGINS must list the origins, not *, in production mode (MSG_PRODUCTION or NODE_ENV=production)',
      ]);
      expect(problemsOf('node', { NODE_ENV: 'production', MSG_ALLOWED_ORIGINS: 'https://app.example.com', ...STORES })).to.have.length(1);
      expect(loadConfig('node', { NODE_ENV: 'production', ...SECURE_NODE }).production).to.equal(true);
      expect(loadConfig('node', { MSG_PRODUCTION: '0' }).production).to.equal(false);
      expect(problemsOf('node', { MSG_PRODUCTION: 'maybe' })[0]).to.match(/^MSG_PRODUCTION="maybe" must be one of/);
    });

    it('refuses a gateway without authentication, explicit origins or trusted proxies in production mode', () => {
      expect(problemsOf('gateway', { MSG_PRODUCTION: 'yes' })).to.deep.equal([
        ...STORES_REQUIRED,
        'MSG_AUTH_JWT_SECRET or MSG_AUTH_JWKS_URL is required in production mode (MSG_PRODUCTION or NODE_ENV=production)',
        'MSG_ALLOWED_ORIGINS must list the origins, not *, in production mode (MSG_PRODUCTION or NODE_ENV=production)',
        "MSG_TRUSTED_PROXIES (the proxy's addresses) is required in production mode (MSG_PRODUCTION or NODE_ENV=production)",
      ]);
      expect(loadConfig('gateway', { MSG_PRODUCTION: 'yes', ...SECURE_GATEWAY }).production).to.equal(true);
      expect(loadConfig('gateway', { MSG_PRODUCTION: 'yes', ...SECURE_GATEWAY, MSG_AUTH_JWKS_URL: '', MSG_AUTH_JWT_SECRET: STRONG }).production).to.equal(true);
      expect(problemsOf('standalone', { NODE_ENV: 'production', ...SECURE_NODE })).to.have.length(2);
    });

    it('refuses weak cluster, JWT and TURN secrets in production mode, naming each variable and never the value', () => {
      const gateway = { ...SECURE_GATEWAY, MSG_AUTH_JWKS_URL: '', MSG_TURN_URLS: 'turn:turn.example.com:3478' };
      for (const weak of ['k', 'correct-horse', 'a'.repeat(64), '0123456789abcdef'.repeat(4), 'changeme'.repeat(8), 'q3Jm0v8Yt4ZkQe9Rw1Lx5Np7Hb2Cd6']) {
        const problems = problemsOf('gateway', { MSG_PRODUCTION: 'true', ...gateway, MSG_CLUSTER_SECRET: weak, MSG_AUTH_JWT_SECRET: weak, MSG_TURN_SECRET: weak });
        expect(problems.map((p) => p.split(' ')[0]), weak).to.deep.equal(['MSG_CLUSTER_SECRET', 'MSG_AUTH_JWT_SECRET', 'MSG_TURN_SECRET']);
        for (const problem of problems) {
          expect(problem).to.match(/is too weak in production mode .*: about \d+ bits of entropy, at least 256 needed/);
          if (weak.length > 1) expect(problem).to.not.include(weak);
        }
        expect(problemsOf('node', { MSG_PRODUCTION: 'true', ...SECURE_NODE, MSG_CLUSTER_SECRET: weak })).to.have.length(1);
      }
      // What the docs tell operators to generate passes: 32 bytes in base64 (with and without padding) and in hex.
      const hex = 'f3a9c1e07b5d4286a1c9e3f0b7d5a8264c1e9f3a07b5d2c8e6a4f1b3d9c7e5a2';
      for (const strong of [STRONG, STRONG.replace('=', ''), hex]) {
        expect(loadConfig('gateway', { MSG_PRODUCTION: 'true', ...gateway, MSG_CLUSTER_SECRET: strong, MSG_AUTH_JWT_SECRET: strong, MSG_TURN_SECRET: strong }).production).to.equal(true);
      }
      // Outside production mode a short secret still works (local runs and tests).
      expect(loadConfig('gateway', { MSG_AUTH_JWT_SECRET: 'k', MSG_CLUSTER_SECRET: 'k' }).authJwtSecret).to.equal('k');
    });

    it('lets an explicit MSG_PRODUCTION=false win over NODE_ENV=production (the image sets NODE_ENV)', () => {
      expect(loadConfig('gateway', { NODE_ENV: 'production', MSG_PRODUCTION: 'false' }).production).to.equal(false);
    });

    it('refuses, in production mode, a drain that cannot close a full node before its timeout', () => {
      const problems = problemsOf('node', { MSG_PRODUCTION: 'true', ...SECURE_NODE, MSG_DRAIN_RATE_PER_SECOND: '100' });
      expect(problems).to.deep.equal([
        'MSG_DRAIN_RATE_PER_SECOND × MSG_DRAIN_TIMEOUT_SECONDS (2500) must cover MSG_MAX_CONNECTIONS (20000) in production mode (MSG_PRODUCTION or NODE_ENV=production)',
      ]);
      expect(loadConfig('node', { MSG_PRODUCTION: 'true', ...SECURE_NODE, MSG_DRAIN_RATE_PER_SECOND: '100', MSG_MAX_CONNECTIONS: '2500' }).production).to.equal(true);
    });
  });

  describe('originAllowed', () => {
    it('allows listed origins, any origin with *, and requests without Origin', () => {
      const list = ['https://app.example.com', 'http://localhost:3000'];
      expect(originAllowed(list, 'https://app.example.com')).to.equal(true);
      expect(originAllowed(list, 'HTTPS://APP.example.com')).to.equal(true);
      expect(originAllowed(list, 'https://evil.example.com')).to.equal(false);
      expect(originAllowed(list, 'null')).to.equal(false);
      expect(originAllowed(list, undefined)).to.equal(true);
      expect(originAllowed(['*'], 'https://evil.example.com')).to.equal(true);
    });
  });

  describe('issue 13 limits', () => {
    it('reads the byte caps of held messages and unread bytes, with their defaults', () => {
      const defaults = loadConfig('node', {});
      expect([defaults.pendingMaxBytes, defaults.pendingMaxBytesPerSender, defaults.pendingMaxBytesPerRecipient, defaults.maxBufferedBytes]).to.deep.equal([
        64 << 20,
        1 << 20,
        1 << 20,
        1 << 20,
      ]);
      const set = loadConfig('node', {
        MSG_PENDING_MAX_BYTES: String(2 ** 33),
        MSG_PENDING_MAX_BYTES_PER_SENDER: String(16 << 20),
        MSG_PENDING_MAX_BYTES_PER_RECIPIENT: String(16 << 20),
        MSG_MAX_BUFFERED_BYTES: String(8 << 20),
      });
      expect([set.pendingMaxBytes, set.pendingMaxBytesPerSender, set.pendingMaxBytesPerRecipient, set.maxBufferedBytes]).to.deep.equal([2 ** 33, 16 << 20, 16 << 20, 8 << 20]);
      expect(() => loadConfig('node', { MSG_MAX_BUFFERED_BYTES: '100' })).to.throw(ConfigError, /MSG_MAX_BUFFERED_BYTES/);
    });

    it('reads etcd and memcached credentials, each user with its password or not at all', () => {
      const config = loadConfig('node', { MSG_ETCD_USERNAME: 'ms', MSG_ETCD_PASSWORD: 'p1', MSG_MEMCACHED_USERNAME: 'mc', MSG_MEMCACHED_PASSWORD: 'p2' });
      expect(config).to.include({ etcdUsername: 'ms', etcdPassword: 'p1', memcachedUsername: 'mc', memcachedPassword: 'p2' });
      expect(loadConfig('gateway', {})).to.not.have.any.keys('etcdUsername', 'etcdPassword', 'memcachedUsername', 'memcachedPassword');
      expect(problemsOf('gateway', { MSG_ETCD_USERNAME: 'ms', MSG_MEMCACHED_PASSWORD: 'p2' })).to.deep.equal([
        'MSG_ETCD_USERNAME and MSG_ETCD_PASSWORD go together: set both or neither',
        'MSG_MEMCACHED_USERNAME and MSG_MEMCACHED_PASSWORD go together: set both or neither',
      ]);
    });

    it('reads the maximum token age, 1 h by default, 1 min to 30 days', () => {
      expect(loadConfig('gateway', {}).authMaxTokenAgeSeconds).to.equal(3600);
      expect(loadConfig('gateway', { MSG_AUTH_MAX_TOKEN_AGE_SECONDS: '600' }).authMaxTokenAgeSeconds).to.equal(600);
      expect(problemsOf('gateway', { MSG_AUTH_MAX_TOKEN_AGE_SECONDS: '59' })[0]).to.match(/^MSG_AUTH_MAX_TOKEN_AGE_SECONDS="59" must be an integer from 60/);
      expect(configVariables('node')).to.not.include('MSG_AUTH_MAX_TOKEN_AGE_SECONDS');
    });

    it('reads the audience list and issuer of /connect tokens', () => {
      const config = loadConfig('gateway', { MSG_AUTH_JWT_SECRET: 's', MSG_AUTH_AUDIENCE: 'app,admin', MSG_AUTH_ISSUER: 'https://issuer.example' });
      expect(config.authAudience).to.deep.equal(['app', 'admin']);
      expect(config.authIssuer).to.equal('https://issuer.example');
    });
  });
});
