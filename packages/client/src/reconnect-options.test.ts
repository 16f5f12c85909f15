// socket.io-shaped reconnect options, driven by a hand-moved clock.
import { expect } from 'chai';
import { CLOSE_CODES } from '@messaging-server/protocol';
import type { ClosedInfo, ConnectOptions, ReconnectFailedInfo } from './client.js';
import { MessagingError } from './errors.js';
import { FakeClock, FakeSockJS, fakeClient, flush, welcomed } from './testing/fakes.js';

function setup(overrides: Partial<ConnectOptions> = {}) {
  const { clock, gateway, client } = fakeClient(overrides);
  const attempts: number[] = [];
  const failed: ReconnectFailedInfo[] = [];
  const closed: ClosedInfo[] = [];
  client.on('reconnect_attempt', (n) => attempts.push(n));
  client.on('reconnect_failed', (info) => failed.push(info));
  client.on('closed', (info) => closed.push(info));
  return { clock, gateway, client, attempts, failed, closed };
}

const started = (overrides: Partial<ConnectOptions> = {}) => welcomed(setup(overrides));

const unreachable = (n: number) => Array.from({ length: n }, () => new TypeError('fetch failed'));

/** Lets every due reconnect run, one delay at a time, and returns the delays it saw. */
async function runDelays(clock: FakeClock, rounds: number): Promise<number[]> {
  const seen: number[] = [];
  for (let i = 0; i < rounds; i++) {
    await flush();
    const [delay] = clock.delays();
    if (delay === undefined) break;
    seen.push(delay);
    await clock.tick(delay);
  }
  return seen;
}

describe('reconnect options', () => {
  it('reconnection: false closes on the first lost connection, with the reason and the close code', async () => {
    const h = await started({ reconnection: false });
    FakeSockJS.last.serverClose(CLOSE_CODES.session_expired, 'session_expired');
    expect(h.client.state).to.equal('closed');
    expect(h.closed).to.have.length(1);
    expect(h.closed[0]).to.deep.include({ reason: 'reconnection_disabled', code: CLOSE_CODES.session_expired });
    expect(h.closed[0]?.error?.code).to.equal('CONNECTION_LOST');
    await h.clock.tick(60_000);
    expect(h.gateway.calls).to.have.length(1);
    expect(h.attempts).to.deep.equal([]);
    expect(h.failed).to.deep.equal([]);
  });

  it('reconnection: false rejects connect() on the first failed /connect instead of retrying', async () => {
    const h = setup({ reconnection: false });
    h.gateway.script.push({ status: 503, body: { error: { code: 'NO_NODE_AVAILABLE', message: 'none' } } });
    let error: unknown;
    await h.client.start().catch((e: unknown) => (error = e));
    expect(error).to.be.instanceOf(MessagingError);
    expect((error as MessagingError).code).to.equal('NO_NODE_AVAILABLE');
    expect(h.closed[0]).to.deep.include({ reason: 'reconnection_disabled', code: 503 });
    await h.clock.tick(60_000);
    expect(h.gateway.calls).to.have.length(1);
  });

  it('emits reconnect_attempt per attempt, then reconnect_failed after reconnectionAttempts, and closes', async () => {
    const h = await started({ reconnectionAttempts: 3 });
    h.gateway.script.push(...unreachable(5));
    FakeSockJS.last.serverClose(1006, 'connection lost');
    await runDelays(h.clock, 10);
    expect(h.attempts).to.deep.equal([1, 2, 3]);
    expect(h.gateway.calls).to.have.length(4); // the first connection and 3 attempts
    expect(h.failed).to.have.length(1);
    expect(h.failed[0]?.attempts).to.equal(3);
    expect(h.failed[0]?.error.code).to.equal('GATEWAY_UNREACHABLE');
    expect(h.client.state).to.equal('closed');
    expect(h.closed).to.have.length(1);
    expect(h.closed[0]?.reason).to.equal('reconnect_failed');
    expect(h.clock.pending).to.equal(0);
  });

  it('counts the retries of a first connection too, so connect() rejects once they are used up', async () => {
    const h = setup({ reconnectionAttempts: 2 });
    h.gateway.script.push(...unreachable(5));
    let error: unknown;
    const ready = h.client.start().catch((e: unknown) => (error = e));
    await runDelays(h.clock, 10);
    await ready;
    expect(h.attempts).to.deep.equal([1, 2]);
    expect(h.gateway.calls).to.have.length(3);
    expect((error as MessagingError).code).to.equal('GATEWAY_UNREACHABLE');
    expect(h.failed).to.have.length(1);
  });

  it('starts counting attempts again after a welcome', async () => {
    const h = await started({ reconnectionAttempts: 2 });
    h.gateway.script.push(...unreachable(1));
    FakeSockJS.last.serverClose(1006, 'connection lost');
    await runDelays(h.clock, 2);
    expect(h.attempts).to.deep.equal([1, 2]);
    FakeSockJS.last.welcome('node-b');
    FakeSockJS.last.serverClose(CLOSE_CODES.store_unavailable, 'store_unavailable');
    await runDelays(h.clock, 1);
    expect(h.attempts).to.deep.equal([1, 2, 1]);
    expect(h.failed).to.deep.equal([]);
    expect(h.client.state).to.not.equal('closed');
    h.client.close();
  });

  it('emits reconnect_attempt when the attempt starts, after its delay', async () => {
    const h = await started({ randomizationFactor: 0, reconnectionDelay: 400 });
    FakeSockJS.last.serverClose(CLOSE_CODES.store_unavailable, 'store_unavailable');
    await h.clock.tick(399);
    expect(h.attempts).to.deep.equal([]);
    expect(h.gateway.calls).to.have.length(1);
    await h.clock.tick(1);
    expect(h.attempts).to.deep.equal([1]);
    expect(h.gateway.calls).to.have.length(2);
    h.client.close();
  });

  it('takes reconnectionDelay, reconnectionDelayMax and randomizationFactor for its delays', async () => {
    const exact = await started({ randomizationFactor: 0, reconnectionDelay: 100, reconnectionDelayMax: 400 });
    exact.gateway.script.push(...unreachable(4));
    FakeSockJS.last.serverClose(CLOSE_CODES.store_unavailable, 'store_unavailable');
    expect(await runDelays(exact.clock, 5)).to.deep.equal([100, 200, 400, 400, 400]);
    exact.client.close();

    // random 0.5 with factor 0.5: three quarters of each ceiling.
    const half = await started({ randomizationFactor: 0.5, reconnectionDelay: 1000, reconnectionDelayMax: 5000 });
    half.gateway.script.push(...unreachable(3));
    FakeSockJS.last.serverClose(CLOSE_CODES.store_unavailable, 'store_unavailable');
    expect(await runDelays(half.clock, 4)).to.deep.equal([750, 1500, 3000, 3750]);
    half.client.close();
  });

  it('comes back after a drain within reconnectionDelayAfterDrain', async () => {
    const h = await started({ reconnectionDelayAfterDrain: 50, random: () => 0.999 });
    FakeSockJS.last.serverClose(CLOSE_CODES.node_shutdown, 'node_shutdown');
    expect(h.clock.delays()).to.deep.equal([49]);
    h.client.close();
  });
});
