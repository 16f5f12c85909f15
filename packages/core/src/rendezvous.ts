/**
 * Rendezvous (highest-random-weight) hashing: every node gets a score for a key, and the key's order is the nodes by
 * falling score. Any process that sees the same node ids computes the same order without talking to the others, and
 * a node that joins or leaves moves only the keys it wins or held: the rest keep their first choice.
 */

/** FNV-1a over UTF-16 code units, then murmur3's finalizer, so that keys differing in one character spread well. */
function score(key: string, nodeId: string): number {
  let hash = 0x811c9dc5;
  const mix = (text: string): void => {
    for (let i = 0; i < text.length; i += 1) {
      hash ^= text.charCodeAt(i);
      hash = Math.imul(hash, 0x01000193);
    }
  };
  mix(key);
  // A separator no user id or node id contains, so ("ab", "c") and ("a", "bc") score differently.
  hash ^= 0xffff;
  hash = Math.imul(hash, 0x01000193);
  mix(nodeId);
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}

/** `nodeIds` in `key`'s rendezvous order, best first; equal scores (a 2^-32 chance) are ordered by node id. */
export function rendezvousOrder(key: string, nodeIds: readonly string[]): string[] {
  return nodeIds
    .map((id) => ({ id, weight: score(key, id) }))
    .sort((a, b) => b.weight - a.weight || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((entry) => entry.id);
}
