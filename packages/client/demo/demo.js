// The demo page: connect under a name, call another name, chat over a data channel, optional camera.
// Everything a test needs is on `window.demo` and behind stable element ids.
(() => {
  'use strict';
  const { MessagingClient, createPeerConnection, listenForCalls, isSignal } = window.MessagingServer;
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const gatewayUrl = params.get('gateway') || location.origin;
  // ICE servers come from /connect (the gateway's MSG_TURN_URLS, TURN with credentials); the SDK fills them in.
  // `?stun=stun:host:port` uses that server instead; `?relay=1` allows only relayed paths, to try TURN out.
  const rtcConfig = {};
  if (params.get('stun')) rtcConfig.iceServers = [{ urls: params.get('stun') }];
  if (params.get('relay') === '1') rtcConfig.iceTransportPolicy = 'relay';
  // `?transports=xhr-streaming` (comma-separated SockJS transport names) tries a proxy's fallbacks without WebSocket.
  const transports = (params.get('transports') || '').split(',').filter(Boolean);
  // `?room=R`: connect with R as the placement hint and join it (demo.room.js shows the members and runs the mesh).
  const roomName = params.get('room');

  const demo = {
    client: null,
    call: null,
    state: 'idle',
    nodeId: null,
    /** The address the gateway gave for that node (behind the proxy: `https://<host>/n/<nodeId>/ws`). */
    listeningAddress: null,
    /** Close codes of every connection the node ended (4000 when it drains), in order. */
    closeCodes: [],
    pcState: null,
    iceState: null,
    channelState: null,
    /** The ICE candidate pair of the call, e.g. `{local: {type: 'relay', protocol: 'udp'}, remote: …}`. */
    path: null,
    /** `{code, message}` of every error the call reported (TURN_UNAUTHORIZED, CALL_FAILED, …). */
    callErrors: [],
    lastChannelMessage: null,
    /** `{direction: 'in'|'out', peer, type}` for every signaling message, in order. */
    signals: [],
    get pc() {
      return demo.call ? demo.call.pc : null;
    },
    get channel() {
      return demo.call ? demo.call.channel || null : null;
    },
  };
  window.demo = demo;

  let signaling = null;
  let stopListening = null;
  let localStream = null;
  let incomingCall = null;

  function text(id, value) {
    const el = $(id);
    el.textContent = value == null || value === '' ? '—' : String(value);
    el.className = value ? `state-${value}` : '';
  }

  function append(listId, line, cls) {
    const list = $(listId);
    const item = document.createElement('li');
    item.textContent = line;
    if (cls) item.className = cls;
    list.append(item);
    while (list.children.length > 300) list.firstElementChild.remove();
    list.scrollTop = list.scrollHeight;
  }

  const stamp = () => new Date().toISOString().slice(11, 23);
  const logSys = (line) => append('signal-log', `${stamp()}  ${line}`, 'sys');

  function signalType(content) {
    if (content.sdp) return content.sdp.type;
    if (content.candidate) return 'candidate';
    if (content.bye) return 'bye';
    return 'signal';
  }

  function logSignal(direction, peer, type) {
    demo.signals.push({ direction, peer, type });
    append('signal-log', `${stamp()}  ${direction === 'out' ? '→' : '←'} ${peer}  ${type}`);
  }

  function setError(message) {
    $('error').textContent = message || '';
    $('error').hidden = !message;
  }

  function setState(state) {
    demo.state = state;
    text('state', state);
    const connected = state === 'open' || state === 'reconnecting' || state === 'connecting';
    $('connect').disabled = connected;
    $('userId').disabled = connected;
    $('disconnect').disabled = !connected;
    $('call').disabled = state !== 'open' || demo.call !== null;
  }

  async function connectAs(userId) {
    setError('');
    // The SDK logs each close with its code; the page shows it, so a drain's 4000 is visible.
    const logger = {
      debug() {},
      info(fields, message) {
        if (message !== 'connection closed') return;
        demo.closeCodes.push(fields.code);
        logSys(`node closed the connection: ${fields.code} ${fields.reason || ''}`.trim());
      },
      warn() {},
      error() {},
    };
    const options = { gatewayUrl, userId, logger };
    if (roomName) options.room = roomName;
    if (transports.length > 0) options.sockjsOptions = { transports };
    const client = new MessagingClient(options);
    demo.client = client;
    client.on('state', (state) => {
      setState(state);
      logSys(`connection ${state}`);
    });
    client.on('session', (session) => {
      demo.nodeId = session.nodeId;
      demo.listeningAddress = session.listeningAddress;
      text('node-id', session.nodeId);
      $('node-id').className = '';
      text('node-address', session.listeningAddress);
      $('node-address').className = '';
      logSys(`welcome from ${session.nodeId}`);
    });
    client.on('error', (error) => logSys(`error ${error.code}`));
    client.on('closed', (info) => {
      logSys(`closed: ${info.reason}`);
      if (info.reason !== 'client') setError(`Disconnected: ${info.error ? info.error.code : info.reason}`);
      endCall();
      if (stopListening) stopListening();
      demo.nodeId = null;
      demo.listeningAddress = null;
      text('node-id', null);
      text('node-address', null);
    });
    client.on('message', (message) => {
      if (isSignal(message.content)) logSignal('in', message.from, signalType(message.content));
    });
    // The WebRTC helper sends through this wrapper so the log can show outgoing signaling (types only).
    signaling = {
      userId,
      get iceServers() {
        return client.iceServers;
      },
      send(to, content) {
        logSignal('out', to, signalType(content));
        return client.send(to, content).catch((error) => {
          logSys(`${signalType(content)} to ${to} failed: ${error.code}`);
          throw error;
        });
      },
      on: (event, listener) => client.on(event, listener),
    };
    // In a room, the mesh answers the members' calls; the one-to-one call below is for pages without a room.
    if (!roomName) stopListening = listenForCalls(signaling, onIncoming);
    setState('connecting');
    try {
      await client.start();
    } catch (error) {
      setError(`${error.code || 'ERROR'}: ${error.message}`);
      return;
    }
    if (roomName) await window.demoRoom.enter(client, signaling, rtcConfig);
  }

  function attach(call) {
    demo.call = call;
    demo.pcState = call.pc.connectionState;
    demo.iceState = call.pc.iceConnectionState;
    text('call-peer', call.peerId);
    $('call-peer').className = '';
    text('pc-state', demo.pcState);
    text('ice-state', demo.iceState);
    text('channel-state', 'connecting');
    demo.channelState = 'connecting';
    $('hangup').disabled = false;
    $('call').disabled = true;
    call.on('state', (state) => {
      demo.pcState = state;
      text('pc-state', state);
      if (state === 'connected') void showPath(call);
    });
    call.on('ice', (state) => {
      demo.iceState = state;
      text('ice-state', state);
    });
    call.on('track', (event) => {
      $('remote-video').srcObject = event.streams[0] || new MediaStream([event.track]);
    });
    call.on('channel', (channel) => {
      demo.channelState = 'open';
      text('channel-state', 'open');
      $('chat-send').disabled = false;
      append('chat-log', `connected to ${call.peerId}`, 'sys');
      channel.addEventListener('message', (event) => {
        demo.lastChannelMessage = String(event.data);
        append('chat-log', `${call.peerId}: ${event.data}`, 'peer');
      });
      channel.addEventListener('close', () => {
        if (demo.call !== call) return;
        demo.channelState = 'closed';
        text('channel-state', 'closed');
        $('chat-send').disabled = true;
      });
    });
    call.on('closed', ({ reason }) => {
      logSys(reason === 'remote' ? `${call.peerId} hung up` : 'call ended');
      if (demo.call === call) endCall();
    });
    call.on('error', (error) => {
      logSys(`call error: ${error.code || error.name || 'error'}`);
      demo.callErrors.push({ code: error.code || error.name, message: error.message });
      // The SDK's own call errors say what went wrong and what to check; show them, not only in the log.
      if (error.code === 'TURN_UNAUTHORIZED' || error.code === 'CALL_FAILED') setError(`${error.code}: ${error.message}`);
    });
  }

  /** Which candidate pair the call uses: direct (host, srflx) or through a TURN relay. Types only, no addresses. */
  async function showPath(call) {
    const pair = await call.selectedCandidatePair().catch(() => undefined);
    if (!pair || demo.call !== call) return;
    demo.path = pair;
    const relayed = pair.local.type === 'relay' || pair.remote.type === 'relay';
    text('ice-path', `${pair.local.type} ↔ ${pair.remote.type} (${pair.local.protocol}), ${relayed ? 'through TURN' : 'direct'}`);
    $('ice-path').className = relayed ? 'state-relay' : 'state-direct';
    logSys(`path: ${pair.local.type} ↔ ${pair.remote.type}`);
  }

  function endCall() {
    const call = demo.call;
    demo.call = null;
    if (call && !call.closed) call.hangup();
    demo.pcState = null;
    demo.iceState = null;
    demo.channelState = null;
    demo.path = null;
    for (const id of ['call-peer', 'pc-state', 'ice-state', 'channel-state', 'ice-path']) text(id, null);
    $('remote-video').srcObject = null;
    $('hangup').disabled = true;
    $('chat-send').disabled = true;
    $('call').disabled = demo.state !== 'open';
    hideIncoming();
  }

  function callOptions() {
    return localStream ? { dataChannel: true, rtcConfig, localStream } : { dataChannel: true, rtcConfig };
  }

  function startCall(create) {
    setError('');
    demo.callErrors = [];
    attach(create());
  }

  function onIncoming(incoming) {
    if (demo.call || incomingCall) {
      logSys(`busy: declined ${incoming.peerId}`);
      incoming.reject();
      return;
    }
    logSys(`incoming call from ${incoming.peerId}`);
    if ($('auto-answer').checked) {
      accept(incoming);
      return;
    }
    incomingCall = incoming;
    $('incoming-peer').textContent = incoming.peerId;
    $('incoming').hidden = false;
  }

  function accept(incoming) {
    hideIncoming();
    if (incoming.cancelled) {
      logSys(`${incoming.peerId} gave up`);
      return;
    }
    $('peer').value = incoming.peerId;
    startCall(() => incoming.accept(callOptions()));
  }

  function hideIncoming() {
    incomingCall = null;
    $('incoming').hidden = true;
  }

  async function toggleCamera() {
    if (localStream) {
      for (const track of localStream.getTracks()) track.stop();
      localStream = null;
      $('local-video').srcObject = null;
      $('camera').textContent = 'Start camera';
      return;
    }
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      logSys(window.isSecureContext ? 'camera: not available in this browser' : 'camera: needs https or localhost');
      return;
    }
    try {
      localStream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
    } catch (error) {
      logSys(`camera: ${error.name || 'unavailable'}`);
      return;
    }
    $('local-video').srcObject = localStream;
    $('camera').textContent = 'Stop camera';
    if (demo.call) demo.call.addStream(localStream);
  }

  $('userId').value = params.get('user') || '';
  $('peer').value = params.get('peer') || '';

  $('connect-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const userId = $('userId').value.trim();
    if (userId) void connectAs(userId);
  });
  $('disconnect').addEventListener('click', () => {
    endCall();
    if (demo.client) demo.client.close();
  });
  $('call-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const peerId = $('peer').value.trim();
    if (!peerId || !signaling || demo.call) return;
    try {
      startCall(() => createPeerConnection(signaling, peerId, callOptions()));
    } catch (error) {
      setError(error.message);
    }
  });
  $('hangup').addEventListener('click', () => endCall());
  $('accept').addEventListener('click', () => incomingCall && accept(incomingCall));
  $('decline').addEventListener('click', () => {
    if (incomingCall) incomingCall.reject();
    hideIncoming();
  });
  $('camera').addEventListener('click', () => void toggleCamera());
  $('chat-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = $('chat-input');
    const channel = demo.channel;
    if (!input.value || !channel || channel.readyState !== 'open') return;
    channel.send(input.value);
    append('chat-log', `me: ${input.value}`, 'me');
    input.value = '';
  });
  window.addEventListener('pagehide', () => {
    endCall();
    if (demo.client) demo.client.close();
  });
})();
