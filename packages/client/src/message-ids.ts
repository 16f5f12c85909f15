/**
 * The prefix of a client's message ids: 62 random bits as base-36 text, from the platform's CSPRNG (browsers and
 * Node alike). Ids are `<prefix>.<counter>`; a recipient drops a repeated (from, id), so two instances of one user
 * must never share a prefix.
 */
export function randomIdPrefix(): string {
  const words = globalThis.crypto.getRandomValues(new Uint32Array(2));
  return `${(words[0] as number).toString(36)}${((words[1] as number) & 0x3fffffff).toString(36)}`;
}
