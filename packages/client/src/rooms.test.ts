import { expect } from 'chai';
import { MessagingError } from './errors.js';
import type { MemberEvent, Room, RoomMessage } from './rooms.js';
import { FakeSockJS, fakeClient, flush, welcomed } from './testing/fakes.js';

const started = () => welcomed(fakeClient());

function lastSent(type: string): Record<string, unknown> {
  const frame = FakeSockJS.last.sent.filter((f) => f['type'] === type).at(-1);
  if (!frame) throw new Error(`no ${type} frame was sent`);
  return frame;
}

/** Joins `room` on the harness's socket, answering with `members`. */
async function joined(client: { join(room: string): Promise<Room> }, room: string, members: string[]): Promise<Room> {
  const pending = client.join(room);
  await flush();
  const join = lastSent('join');
  expect(join).to.deep.include({ type: 'join', room });
  FakeSockJS.last.receive({ type: 'joined', room, id: join['id'], members });
  return pending;
}

function record(room: Room) {
  const messages: RoomMessage[] = [];
  const members: MemberEvent[] = [];
  const closed: string[] = [];
  const resyncs: (readonly string[])[] = [];
  room.on('message', (m) => messages.push(m));
  room.on('member', (m) => members.push(m));
  room.on('closed', (c) => closed.push(c.reason));
  room.on('members', (list) => resyncs.push(list));
  return { messages, members, closed, resyncs };
}

describe('rooms (SDK)', () => {
  it('join resolves with the members in join order; member events keep the list', async () => {
    const { client } = await started();
    const room = await joined(client, 'standup', ['bob', 'alice']);
    expect(room.name).to.equal('standup');
    expect(room.members).to.deep.equal(['bob', 'alice']);
    const seen = record(room);
    await flush();
    FakeSockJS.last.receive({ type: 'member', room: 'standup', userId: 'carol', event: 'joined' });
    FakeSockJS.last.receive({ type: 'member', room: 'standup', userId: 'bob', event: 'left' });
    expect(seen.members).to.deep.equal([
      { userId: 'carol', event: 'joined' },
      { userId: 'bob', event: 'left' },
    ]);
    expect(room.members).to.deep.equal(['alice', 'carol']);
    expect(client.room('standup')).to.equal(room);
    client.close();
  });

  it('hands over what arrived between joined and the app attaching listeners', async () => {
    const { client } = await started();
    const pending = client.join('r1');
    await flush();
    const id = lastSent('join')['id'];
    FakeSockJS.last.receive({ type: 'joined', room: 'r1', id, members: ['bob', 'alice'] });
    FakeSockJS.last.receive({ type: 'message', room: 'r1', from: 'bob', content: 'early', id: 'b.1' });
    const room = await pending;
    const seen = record(room);
    await flush();
    expect(seen.messages).to.deep.equal([{ from: 'bob', room: 'r1', content: 'early', id: 'b.1' }]);
    client.close();
  });

  it('rejects join with the contract codes and keeps no room', async () => {
    const { client } = await started();
    for (const code of ['ROOM_FULL', 'TOO_MANY_ROOMS', 'FORBIDDEN_ROOM', 'INVALID_ROOM']) {
      const pending = client.join('r-' + code.toLowerCase());
      pending.catch(() => {});
      await flush();
      FakeSockJS.last.receive({ type: 'error', code, message: 'no', id: lastSent('join')['id'] });
      const error = await pending.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(MessagingError);
      expect((error as MessagingError).code).to.equal(code);
      expect(client.room('r-' + code.toLowerCase())).to.equal(undefined);
    }
    client.close();
  });

  it('send goes with room and an id, resolves on ack, rejects with the error code', async () => {
    const { client } = await started();
    const room = await joined(client, 'r', ['alice', 'bob']);
    const sent = room.send({ hello: 1 });
    const frame = lastSent('message');
    expect(frame).to.deep.include({ type: 'message', room: 'r', content: { hello: 1 } });
    expect(frame).to.not.have.property('to');
    FakeSockJS.last.receive({ type: 'ack', id: frame['id'] });
    await sent;
    const refused = room.send('x');
    refused.catch(() => {});
    FakeSockJS.last.receive({ type: 'error', code: 'NOT_A_MEMBER', message: 'no', id: lastSent('message')['id'] });
    const error = await refused.then(() => undefined, (e: unknown) => e as MessagingError);
    expect(error?.code).to.equal('NOT_A_MEMBER');
    client.close();
  });

  it('room messages reach the room, not the direct listener, with repeats by (from, id) dropped', async () => {
    const { client } = await started();
    const room = await joined(client, 'r', ['alice', 'bob']);
    await flush();
    const seen = record(room);
    const direct: unknown[] = [];
    client.on('message', (m) => direct.push(m));
    const frame = { type: 'message', room: 'r', from: 'bob', content: 'hi', id: 'b.7' };
    FakeSockJS.last.receive(frame);
    FakeSockJS.last.receive(frame);
    FakeSockJS.last.receive({ type: 'message', room: 'r', from: 'bob', content: 'no id' });
    FakeSockJS.last.receive({ type: 'message', from: 'bob', to: 'alice', content: 'direct', id: 'b.7' });
    expect(seen.messages).to.deep.equal([
      { from: 'bob', room: 'r', content: 'hi', id: 'b.7' },
      { from: 'bob', room: 'r', content: 'no id' },
    ]);
    expect(direct).to.have.length(1);
    expect(client.repeatsDropped).to.equal(1);
    client.close();
  });

  it('confirms room messages with receipts like direct ones', async () => {
    const { client, clock } = await started();
    const room = await joined(client, 'r', ['alice', 'bob']);
    await flush();
    record(room);
    FakeSockJS.last.receive({ type: 'message', room: 'r', from: 'bob', content: 'hi', id: 'b.1', seq: 1 });
    await clock.tick(1000);
    expect(FakeSockJS.last.sent.filter((f) => f['type'] === 'receipt')).to.deep.equal([{ type: 'receipt', seq: 1 }]);
    client.close();
  });

  it('after a reconnect it sends no join, and accepts a resync (joined without id)', async () => {
    const { client, clock } = await started();
    const room = await joined(client, 'r', ['alice', 'bob']);
    await flush();
    const seen = record(room);
    const first = FakeSockJS.last;
    first.serverClose(4000, 'node_shutdown');
    await clock.tick(10_000);
    const second = FakeSockJS.last;
    expect(second).to.not.equal(first);
    second.welcome('node-b');
    second.receive({ type: 'joined', room: 'r', members: ['alice', 'bob', 'carol'] });
    second.receive({ type: 'message', room: 'r', from: 'carol', content: 'after', id: 'c.1' });
    await flush();
    expect(second.sent.filter((f) => f['type'] === 'join')).to.deep.equal([]);
    expect(seen.resyncs).to.deep.equal([['alice', 'bob', 'carol']]);
    expect(room.members).to.deep.equal(['alice', 'bob', 'carol']);
    expect(seen.messages.map((m) => m.content)).to.deep.equal(['after']);
    expect(client.room('r')).to.equal(room);
    client.close();
  });

  it('a member event naming itself left closes the room as removed; joining again makes a new Room', async () => {
    const { client } = await started();
    const room = await joined(client, 'r', ['alice', 'bob']);
    await flush();
    const seen = record(room);
    FakeSockJS.last.receive({ type: 'member', room: 'r', userId: 'alice', event: 'left' });
    FakeSockJS.last.receive({ type: 'message', room: 'r', from: 'bob', content: 'too late', id: 'b.2' });
    expect(seen.closed).to.deep.equal(['removed']);
    expect(seen.members).to.deep.equal([]);
    expect(seen.messages).to.deep.equal([]);
    expect(room.closed).to.equal(true);
    expect(client.room('r')).to.equal(undefined);
    const again = await joined(client, 'r', ['bob', 'alice']);
    expect(again).to.not.equal(room);
    const error = await room.send('x').then(() => undefined, (e: unknown) => e as MessagingError);
    expect(error?.code).to.equal('NOT_A_MEMBER');
    client.close();
  });

  it('leave sends leave, resolves on ack and closes the room; close() closes every room', async () => {
    const { client } = await started();
    const a = await joined(client, 'a', ['alice']);
    const b = await joined(client, 'b', ['alice']);
    await flush();
    const seenA = record(a);
    const seenB = record(b);
    const left = a.leave();
    await flush();
    const leave = lastSent('leave');
    expect(leave).to.deep.include({ type: 'leave', room: 'a' });
    FakeSockJS.last.receive({ type: 'ack', id: leave['id'] });
    await left;
    expect(seenA.closed).to.deep.equal(['left']);
    expect(client.room('a')).to.equal(undefined);
    client.close();
    expect(seenB.closed).to.deep.equal(['closed']);
  });

  it('a join made while disconnected waits in the queue and goes out after the welcome', async () => {
    const { client, clock } = await started();
    FakeSockJS.last.serverClose(4000, 'node_shutdown');
    const pending = client.join('later');
    await clock.tick(10_000);
    FakeSockJS.last.welcome('node-b');
    await flush();
    const join = lastSent('join');
    FakeSockJS.last.receive({ type: 'joined', room: 'later', id: join['id'], members: ['alice'] });
    expect((await pending).members).to.deep.equal(['alice']);
    client.close();
  });
});
