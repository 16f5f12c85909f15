import { expect } from 'chai';
import type { ClosedBy } from './client-connection.js';
import { closedByCode, ConnectionLifecycle } from './connection-lifecycle.js';

function tick(): Promise<void> {
  return new Promise((resolve) => process.nextTick(resolve));
}

describe('ConnectionLifecycle', () => {
  it('tells once, node first: a transport end after the node began closing stays "node"', async () => {
    const told: ClosedBy[] = [];
    const finished: number[] = [];
    const life = new ConnectionLifecycle(() => finished.push(told.length));
    life.listen((by) => told.push(by));
    expect(life.closeByNode()).to.equal(true);
    expect(life.closeByNode(), 'a second close').to.equal(false);
    expect(life.closing).to.equal(true);
    life.finishSoon();
    life.ended('client');
    await tick();
    expect(told).to.deep.equal(['node']);
    expect(finished, 'the finished hook runs once, before the listener').to.deep.equal([0]);
  });

  it('reports who ended it when the node had not begun closing', () => {
    const told: ClosedBy[] = [];
    const life = new ConnectionLifecycle();
    life.listen((by) => told.push(by));
    life.ended(closedByCode(1000));
    life.ended(closedByCode(1006));
    expect(told).to.deep.equal(['client']);
    expect(life.closeByNode(), 'closing an ended connection').to.equal(false);
  });

  it('runs the finished hook even when nobody listened yet', async () => {
    let finished = 0;
    const life = new ConnectionLifecycle(() => (finished += 1));
    life.closeByNode();
    life.finishSoon();
    await tick();
    expect(finished).to.equal(1);
  });

  it('classifies ws codes: 1006 is the network, any other code came from the client', () => {
    expect(closedByCode(1006)).to.equal('network');
    expect(closedByCode(1001)).to.equal('client');
  });
});
