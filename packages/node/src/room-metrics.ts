import { Counter, Gauge, type Registry } from 'prom-client';
import type { Rooms } from './rooms-wiring.js';

/**
 * v1.2 rooms per node: the rooms homed here that have members and their members, this node's members (a user in
 * two rooms counts twice), and the fan-out copies this node received from homes elsewhere (one per message per node,
 * not one per member); and what the homes here ordered and sent, local or node-to-node (`make scale` reads these to
 * tell how many room messages crossed nodes).
 */
export function registerRoomMetrics(registry: Registry, rooms: Rooms): void {
  new Gauge({
    name: 'msg_rooms_homed',
    help: 'Rooms with members whose home is this node',
    registers: [registry],
    collect() {
      this.set(rooms.home.stats.rooms);
    },
  });
  new Gauge({
    name: 'msg_room_members_homed',
    help: 'Members of the rooms whose home is this node',
    registers: [registry],
    collect() {
      this.set(rooms.home.stats.members);
    },
  });
  new Gauge({
    name: 'msg_room_members_local',
    help: 'Room memberships of users connected to this node',
    registers: [registry],
    collect() {
      this.set(rooms.members.memberCount);
    },
  });
  new Counter({
    name: 'msg_room_fanouts_received_total',
    help: 'Room frames received from a home on another node (one copy per node holding members)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(rooms.members.remoteFanouts);
    },
  });
  const counts = rooms.home.counts;
  new Counter({
    name: 'msg_room_messages_homed_total',
    help: 'Room messages ordered by this home; path="crossed" when the sender or any member was on another node',
    labelNames: ['path'],
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ path: 'local' }, counts.messagesLocal);
      this.inc({ path: 'crossed' }, counts.messagesCrossed);
    },
  });
  new Counter({
    name: 'msg_room_fanout_copies_total',
    help: 'Room frames this home fanned out, one copy per node holding members; to="remote" went node-to-node',
    labelNames: ['to'],
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ to: 'local' }, counts.copiesLocal);
      this.inc({ to: 'remote' }, counts.copiesRemote);
    },
  });
}
