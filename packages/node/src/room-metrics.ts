import { Counter, Gauge, type Registry } from 'prom-client';
import type { Rooms } from './rooms-wiring.js';

/**
 * v1.2 rooms per node: the rooms homed here that have members and their members, this node's members (a user in
 * two rooms counts twice), and the fan-out copies this node received from homes elsewhere (one per message per node,
 * not one per member).
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
}
