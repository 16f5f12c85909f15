import type { RegistryEntry, RegistrySnapshot } from './registry.js';

/** Groups registry entries by kind, as `Registry.list()` returns them. */
export function snapshotOf(entries: RegistryEntry[]): RegistrySnapshot & { entries: RegistryEntry[] } {
  const snapshot: RegistrySnapshot & { entries: RegistryEntry[] } = {
    nodes: new Map(),
    loads: new Map(),
    gateways: new Map(),
    entries,
  };
  for (const entry of entries) {
    if (entry.kind === 'node') snapshot.nodes.set(entry.id, entry.value);
    else if (entry.kind === 'load') snapshot.loads.set(entry.id, entry.value);
    else snapshot.gateways.set(entry.id, entry.value);
  }
  return snapshot;
}
