import { expect } from 'chai';
import { roomGranted } from './limits.js';
import { parseClientFrame } from './schemas.js';
import { isRoomMessageFrame } from './types.js';

describe('client frame validation: rooms (v1.2)', () => {
  it('accepts join, leave and room message frames', () => {
    expect(parseClientFrame('{"type":"join","room":"R","id":"j1"}')).to.deep.equal({ ok: true, value: { type: 'join', room: 'R', id: 'j1' } });
    expect(parseClientFrame('{"type":"leave","room":"R"}').ok).to.equal(true);
    const message = parseClientFrame('{"type":"message","room":"R","content":{"a":1},"id":"m1"}');
    expect(message.ok).to.equal(true);
    if (message.ok) expect(isRoomMessageFrame(message.value)).to.equal(true);
    const untyped = parseClientFrame('{"room":"R","content":1}');
    expect(untyped.ok && isRoomMessageFrame(untyped.value)).to.equal(true);
  });

  it('a direct message is not a room message', () => {
    const direct = parseClientFrame('{"to":"bob","content":1}');
    expect(direct.ok && isRoomMessageFrame(direct.value)).to.equal(false);
  });

  it('refuses a frame with both "to" and "room", with its id', () => {
    expect(parseClientFrame('{"type":"message","to":"bob","room":"R","content":1,"id":"x"}')).to.deep.equal({
      ok: false,
      message: 'a message has "to" or "room", never both',
      id: 'x',
    });
  });

  it('refuses a join without a room, a non-string room and unknown types, keeping the id', () => {
    expect(parseClientFrame('{"type":"join","id":"j"}')).to.include({ ok: false, id: 'j' });
    expect(parseClientFrame('{"type":"leave","room":7,"id":"l"}')).to.include({ ok: false, id: 'l' });
    expect(parseClientFrame('{"type":"joined","room":"R","id":"k"}')).to.include({ ok: false, id: 'k' });
    expect(parseClientFrame('{"type":"message","room":"R","id":"c"}')).to.include({ ok: false, id: 'c' });
  });

  it('grants rooms from a claim: exact names, prefixes ending in *, and everything without a claim', () => {
    expect(roomGranted(undefined, 'any')).to.equal(true);
    expect(roomGranted([], 'any')).to.equal(false);
    expect(roomGranted(['team-a'], 'team-a')).to.equal(true);
    expect(roomGranted(['team-a'], 'team-ab')).to.equal(false);
    expect(roomGranted(['team-*'], 'team-ab')).to.equal(true);
    expect(roomGranted(['team-*'], 'other')).to.equal(false);
    expect(roomGranted(['*'], 'other')).to.equal(true);
  });
});
