import { expect } from 'chai';
import { createPinoLogger, REDACTED } from './pino-logger.js';

function capture(): { lines: Array<Record<string, unknown>>; write(line: string): void } {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) };
}

describe('createPinoLogger', () => {
  it('writes JSON lines with level, message, name, bindings and fields', () => {
    const out = capture();
    const logger = createPinoLogger({ level: 'info', name: 'gateway', bindings: { gatewayId: 'g1' }, destination: out });
    logger.info({ userId: 'alice' }, 'session created');
    expect(out.lines).to.have.length(1);
    const line = out.lines[0];
    expect(line).to.include({ msg: 'session created', name: 'gateway', gatewayId: 'g1', userId: 'alice', level: 30 });
    expect(line?.['time']).to.match(/^\d{4}-\d\d-\d\dT/);
  });

  it('drops lines below its level', () => {
    const out = capture();
    const logger = createPinoLogger({ level: 'warn', destination: out });
    logger.debug({}, 'd');
    logger.info({}, 'i');
    logger.warn({}, 'w');
    logger.error({}, 'e');
    expect(out.lines.map((l) => l['msg'])).to.deep.equal(['w', 'e']);
    const silent = capture();
    createPinoLogger({ level: 'silent', destination: silent }).error({}, 'nothing');
    expect(silent.lines).to.have.length(0);
  });

  it('children add their bindings and keep the parent’s', () => {
    const out = capture();
    const logger = createPinoLogger({ level: 'debug', bindings: { nodeId: 'n1' }, destination: out });
    logger.child({ connId: 7 }).child({ userId: 'bob' }).debug({ n: 1 }, 'frame');
    expect(out.lines[0]).to.include({ nodeId: 'n1', connId: 7, userId: 'bob', n: 1, msg: 'frame' });
  });

  it('redacts session keys, tokens and credentials wherever they commonly appear', () => {
    const out = capture();
    const logger = createPinoLogger({ level: 'debug', destination: out });
    logger.info(
      {
        listeningKey: 'k-top',
        token: 't-top',
        authorization: 'Bearer a',
        session: { userId: 'alice', listeningKey: 'k-nested' },
        query: { token: 't-nested' },
        headers: { authorization: 'Bearer b', 'x-cluster-secret': 's1', host: 'h' },
        req: { headers: { authorization: 'Bearer c', 'x-cluster-secret': 's2' } },
        config: { clusterSecret: 's3', authJwtSecret: 's4', port: 8080 },
      },
      'everything secret',
    );
    const text = JSON.stringify(out.lines[0]);
    for (const secret of ['k-top', 't-top', 'Bearer', 'k-nested', 't-nested', 's1', 's2', 's3', 's4']) {
      expect(text, secret).to.not.include(secret);
    }
    const line = out.lines[0] as Record<string, Record<string, unknown>>;
    expect(line['session']).to.deep.equal({ userId: 'alice', listeningKey: REDACTED });
    expect(line['headers']?.['host']).to.equal('h');
    expect(line['config']?.['port']).to.equal(8080);
  });

  it('also redacts in child logger bindings', () => {
    const out = capture();
    createPinoLogger({ level: 'info', destination: out }).child({ listeningKey: 'k-bound' }).info({}, 'bound');
    expect(JSON.stringify(out.lines[0])).to.not.include('k-bound');
  });

  it('serializes errors with message and stack', () => {
    const out = capture();
    createPinoLogger({ level: 'info', destination: out }).error({ err: new Error('boom') }, 'failed');
    const err = out.lines[0]?.['err'] as Record<string, unknown>;
    expect(err['message']).to.equal('boom');
    expect(err['stack']).to.be.a('string');
  });
});
