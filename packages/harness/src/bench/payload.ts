/**
 * The signaling payloads every system relays: the same bytes for all three, so only the server's work differs.
 * `t` is the sender's performance.now() (one load-generator process, one clock), `s` a sequence number.
 */

export type SizeName = 'candidate' | 'sdp';

// Sized so the JSON frame a client sends is ~200 B (an ICE candidate) or ~2 KB (an SDP offer) for every system.
const CANDIDATE =
  'candidate:842163049 1 udp 1677729535 192.0.2.17 50541 typ srflx raddr 10.0.0.5 rport 50541 generation 0 ufrag Xa4f network-cost 999';

const SDP_LINES = [
  'v=0',
  'o=- 4611731400430051336 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0 1',
  'a=extmap-allow-mixed',
  'a=msid-semantic: WMS stream',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126',
  'c=IN IP4 0.0.0.0',
  'a=rtcp:9 IN IP4 0.0.0.0',
  'a=ice-ufrag:Xa4f',
  'a=ice-pwd:by4GZGG1lw+040DWA6hXM5Bz',
  'a=ice-options:trickle',
  'a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08',
  'a=setup:actpass',
  'a=mid:0',
  'a=sendrecv',
  'a=rtcp-mux',
  'a=rtpmap:111 opus/48000/2',
  'a=rtcp-fb:111 transport-cc',
  'a=fmtp:111 minptime=10;useinbandfec=1',
];

function sdpOfLength(length: number): string {
  let text = '';
  for (let i = 0; text.length < length; i += 1) text += `${SDP_LINES[i % SDP_LINES.length] ?? ''}\r\n`;
  return text.slice(0, length);
}

/** The content object's string fields, by size. The frame around it adds ~60–90 bytes depending on the system. */
export const BODY: Record<SizeName, { kind: string; text: string }> = {
  candidate: { kind: 'candidate', text: CANDIDATE },
  sdp: { kind: 'offer', text: sdpOfLength(1890) },
};

export interface Payload {
  t: number;
  s: number;
  k: string;
  d: string;
}
