import { expect } from 'chai';
import type { ServerFrame } from '@messaging-server/protocol';
import { HeldBudget } from './held-budget.js';
import { RoomAbsences } from './room-absence.js';
import { Unconfirmed } from './unconfirmed.js';

const message = (from: string, content: number, id?: string): ServerFrame => ({ type: 'message', from, room: 'R', content, ...(id === undefined ? {} : { id }) });

describe('RoomAbsences (what a room home holds for away members)', () => {
  const budget = (totalBytes = 1 << 20): HeldBudget => new HeldBudget({ totalBytes, perSenderBytes: 1 << 20, perRecipientBytes: 1 << 20 });

  it('holds in order, puts what a connection left unconfirmed first, and releases every byte on take', () => {
    const b = budget();
    const away = new RoomAbsences(b, 10);
    expect(away.holding('bob')).to.equal(false);
    expect(away.hold('bob', [message('alice', 3)])).to.equal(true);
    expect(away.hold('bob', [{ type: 'member', room: 'R', userId: 'carol', event: 'joined' }])).to.equal(true);
    expect(away.hold('bob', [message('alice', 1, 'a1'), message('alice', 2, 'a2')], true)).to.equal(true);
    expect(away.holding('bob')).to.equal(true);
    const frames = away.take('bob');
    expect(frames.map((f) => (f.type === 'message' ? f.content : f.type))).to.deep.equal([1, 2, 3, 'member']);
    expect(away.holding('bob')).to.equal(false);
    expect(b.total, 'every byte came back').to.equal(0);
  });

  it('refuses, holding nothing, past MSG_PENDING_MAX or a byte cap (the home then removes the member)', () => {
    const away = new RoomAbsences(budget(), 2);
    expect(away.hold('bob', [message('a', 1), message('a', 2)])).to.equal(true);
    expect(away.hold('bob', [message('a', 3)])).to.equal(false);
    expect(away.take('bob')).to.have.length(2);
    const tight = new RoomAbsences(budget(600), 100);
    expect(tight.hold('bob', [message('a', 1), message('a', 2), message('a', 3)]), 'three frames of ~300 bytes do not fit in 600').to.equal(false);
    expect(tight.get('bob')?.held).to.deep.equal([]);
    expect(tight.hold('bob', [message('a', 1)]), 'nothing stayed reserved').to.equal(true);
  });

  it('a suspect member is not held for, and a fan-out that reaches it clears it', () => {
    const away = new RoomAbsences(budget(), 10);
    away.suspect('bob', 1000);
    expect(away.holding('bob')).to.equal(false);
    expect(away.get('bob')?.since).to.equal(1000);
    away.present('bob');
    expect(away.get('bob')).to.equal(undefined);
    away.suspect('carol');
    away.mark('carol');
    expect(away.holding('carol'), 'known away now').to.equal(true);
  });
});

describe('Unconfirmed.takeRoomFrames', () => {
  it('takes out the room messages left unconfirmed, oldest first, and leaves the direct ones to takeAll', () => {
    const u = new Unconfirmed(100, () => undefined);
    u.written(undefined, 0, Date.now(), message('alice', 1, 'a1'));
    u.written(undefined, 0);
    u.written(undefined, 0, Date.now(), message('alice', 2, 'a2'));
    u.written(undefined, 0, Date.now(), message('alice', 3, 'a3'));
    expect(u.confirm(1).map((w) => w.seq)).to.deep.equal([1]);
    expect(u.takeRoomFrames().map(({ roomFrame: f }) => (f.type === 'message' ? f.content : null))).to.deep.equal([2, 3]);
    expect(u.takeAll().map((w) => w.seq)).to.deep.equal([2]);
  });
});
