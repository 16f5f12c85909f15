/** One end of the ICE candidate pair a call uses: the kind of path, never the address. */
export interface CandidateInfo {
  /** `host` (same network), `srflx` (through NAT, found with STUN), `prflx`, or `relay` (through a TURN server). */
  type: string;
  /** `udp` or `tcp`, the transport of this candidate. */
  protocol: string;
  /** For a relay candidate: how this peer reaches its TURN server (`udp`, `tcp` or `tls`). */
  relayProtocol?: string;
}

export interface CandidatePair {
  local: CandidateInfo;
  remote: CandidateInfo;
}

type Stats = Record<string, unknown> & { id: string; type: string };

function candidateInfo(stats: Stats | undefined): CandidateInfo | undefined {
  if (!stats) return undefined;
  const info: CandidateInfo = { type: String(stats['candidateType']), protocol: String(stats['protocol']) };
  if (typeof stats['relayProtocol'] === 'string') info.relayProtocol = stats['relayProtocol'];
  return info;
}

/**
 * The candidate pair ICE selected, from the connection's stats, or undefined before ICE has picked one. It tells
 * an application (and the demo page) whether a call runs directly or through a TURN relay.
 */
export async function selectedCandidatePair(pc: RTCPeerConnection): Promise<CandidatePair | undefined> {
  const byId = new Map<string, Stats>();
  (await pc.getStats()).forEach((stats: Stats) => byId.set(stats.id, stats));
  const all = [...byId.values()];
  const transportPick = all.find((s) => s.type === 'transport' && typeof s['selectedCandidatePairId'] === 'string');
  // Firefox has no transport stats; its selected pair is marked on the pair itself.
  const pair = transportPick
    ? byId.get(String(transportPick['selectedCandidatePairId']))
    : all.find((s) => s.type === 'candidate-pair' && s['selected'] === true);
  if (!pair) return undefined;
  const local = candidateInfo(byId.get(String(pair['localCandidateId'])));
  const remote = candidateInfo(byId.get(String(pair['remoteCandidateId'])));
  return local && remote ? { local, remote } : undefined;
}
