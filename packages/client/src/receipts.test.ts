import { expect } from 'chai';
import type { ConnectOptions } from './options.js';
import { FakeSockJS, fakeClient, welcomed } from './testing/fakes.js';

const started = (overrides: Partial<ConnectOptions> = {}) => welcomed(fakeClient(overrides));

function receipts(socket: FakeSockJS): unknown[] {
  return socket.sent.filter((f) => f['type'] === 'receipt');
}

function message(seq: number, id: string, from = 'bob'): Record<string, unknown> {
  return { type: 'message', from, to: 'alice', content: { n: seq }, id, seq };
}

describe('MessagingClient receipts (contract v1.2)', () => {
  it('opens its connections with receipts=1 by default, and without them when receipts is false', async () => {
    const on = await started();
    expect(FakeSockJS.last.url.searchParams.get('receipts')).to.equal('1');
    on.client.close();
    const off = await started({ receipts: false });
    expect(FakeSockJS.last.url.searchParams.has('receipts')).to.equal(false);
    FakeSockJS.last.receive(message(1, 'm1'));
    await off.clock.tick(1000);
    expect(receipts(FakeSockJS.last)).to.deep.equal([]);
    off.client.close();
  });

  it('confirms a burst with one cumulative receipt 100 ms after its first message, and at most that often', async () => {
    const h = await started();
    const socket = FakeSockJS.last;
    const got: unknown[] = [];
    h.client.on('message', (m) => got.push(m.id));
    socket.receive(message(1, 'm1'));
    await h.clock.tick(40);
    socket.receive(message(2, 'm2'));
    socket.receive(message(3, 'm3'));
    await h.clock.tick(59);
    expect(receipts(socket), 'nothing before the delay').to.deep.equal([]);
    await h.clock.tick(1);
    expect(receipts(socket)).to.deep.equal([{ type: 'receipt', seq: 3 }]);
    socket.receive(message(4, 'm4'));
    await h.clock.tick(99);
    expect(receipts(socket)).to.have.length(1);
    await h.clock.tick(1);
    expect(receipts(socket)).to.deep.equal([
      { type: 'receipt', seq: 3 },
      { type: 'receipt', seq: 4 },
    ]);
    await h.clock.tick(1000);
    expect(receipts(socket), 'no receipt without a new message').to.have.length(2);
    expect(got).to.deep.equal(['m1', 'm2', 'm3', 'm4']);
    h.client.close();
  });

  it('confirms a repeat it drops, and counts seqs from 1 again on the next connection', async () => {
    const h = await started();
    const first = FakeSockJS.last;
    const got: unknown[] = [];
    h.client.on('message', (m) => got.push(m.id));
    first.receive(message(1, 'm1'));
    first.receive(message(2, 'm2'));
    first.serverClose(4006, 'receipts_stalled');
    await h.clock.tick(10_000);
    const second = FakeSockJS.last;
    expect(second).to.not.equal(first);
    second.welcome('node-b');
    // Delivered again after the welcome: both are repeats for the app, and still confirmed for the node.
    second.receive(message(1, 'm1'));
    second.receive(message(2, 'm2'));
    second.receive(message(3, 'm3'));
    await h.clock.tick(100);
    expect(receipts(second)).to.deep.equal([{ type: 'receipt', seq: 3 }]);
    expect(got).to.deep.equal(['m1', 'm2', 'm3']);
    expect(h.client.repeatsDropped).to.equal(2);
    h.client.close();
  });

  it('confirms what it has before its own close frame, so none of it comes back as PEER_UNAVAILABLE', async () => {
    const h = await started();
    const socket = FakeSockJS.last;
    socket.receive(message(1, 'm1'));
    socket.receive(message(2, 'm2'));
    h.client.close();
    expect(receipts(socket)).to.deep.equal([{ type: 'receipt', seq: 2 }]);
    expect(socket.closedByClient).to.equal(true);
  });

  it('keeps its confirmation delay within 50–200 ms', async () => {
    for (const [asked, used] of [
      [10, 50],
      [150, 150],
      [5000, 200],
    ] as const) {
      const h = await started({ receiptDelayMs: asked });
      FakeSockJS.last.receive(message(1, 'm1'));
      expect(h.clock.delays(), `asked ${String(asked)}`).to.deep.equal([used]);
      h.client.close();
    }
  });
});
