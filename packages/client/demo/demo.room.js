// The demo page's room mode (`?room=R`): the page connects with the room's name (placement puts the members on one
// node), joins it, shows a tile per member in join order, and runs a mesh call with a data channel to every other
// member. State for tests is on `window.demoRoom`.
(() => {
  'use strict';
  const { meshCall } = window.MessagingServer;
  const $ = (id) => document.getElementById(id);
  const name = new URLSearchParams(location.search).get('room');
  const state = {
    name,
    userId: null,
    room: null,
    mesh: null,
    /** Members in join order, this user included. */
    members: [],
    /** Per peer: 'connecting' until its data channel opens, then 'open'. */
    channels: {},
    /** Per peer: the last text received on its data channel. */
    received: {},
    error: null,
    closedReason: null,
  };
  window.demoRoom = state;
  if (!name) return;
  $('room-card').hidden = false;
  $('room-name').textContent = name;

  function render() {
    const tiles = state.members.map((userId) => {
      const tile = document.createElement('figure');
      const self = userId === state.userId;
      tile.className = `tile${self ? ' self' : ''}`;
      tile.dataset.user = userId;
      tile.dataset.testid = 'tile';
      const who = document.createElement('strong');
      who.textContent = self ? `${userId} (you)` : userId;
      const status = document.createElement('span');
      status.className = 'tile-state';
      status.textContent = self ? 'here' : state.channels[userId] || 'waiting';
      tile.append(who, status);
      return tile;
    });
    $('room-tiles').replaceChildren(...tiles);
    $('room-error').hidden = !state.error;
    $('room-error').textContent = state.error || '';
  }

  function follow(call) {
    state.channels[call.peerId] = 'connecting';
    render();
    call.on('channel', (channel) => {
      state.channels[call.peerId] = 'open';
      render();
      channel.addEventListener('message', (event) => {
        state.received[call.peerId] = String(event.data);
      });
      channel.send(`hello from ${state.userId}`);
    });
  }

  /** Called by demo.js after the first welcome, with the client and its logging signaling wrapper. */
  state.enter = async (client, signaling, rtcConfig) => {
    state.userId = client.userId;
    let room;
    try {
      room = await client.join(name);
    } catch (error) {
      state.error = `${error.code || 'ERROR'}: ${error.message}`;
      render();
      return;
    }
    state.room = room;
    state.members = [...room.members];
    const refresh = () => {
      state.members = [...room.members];
      render();
    };
    room.on('member', refresh);
    room.on('members', refresh);
    room.on('closed', ({ reason }) => {
      state.closedReason = reason;
      state.members = [];
      state.channels = {};
      render();
    });
    const mesh = meshCall(signaling, room, { dataChannel: true, rtcConfig });
    state.mesh = mesh;
    mesh.on('peer', follow);
    mesh.on('peer-closed', (peer) => {
      delete state.channels[peer];
      render();
    });
    // Offers made in the constructor were reported before the listener above existed.
    for (const call of mesh.calls.values()) follow(call);
    render();
  };
})();
