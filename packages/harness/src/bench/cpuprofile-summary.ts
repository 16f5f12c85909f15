/**
 * Reads a V8 .cpuprofile (node --cpu-prof) and prints where the time went: self time by package/module and the
 * top functions by self time. Usage: node --import tsx packages/harness/src/bench/cpuprofile-summary.ts <file.cpuprofile> [top]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  totalMs: number;
  busyMs: number;
  byModule: { module: string; ms: number; share: number }[];
  byFunction: { fn: string; where: string; ms: number; share: number }[];
}

/** A readable bucket for a frame: the npm package, our package, a Node core module, or V8 itself. */
export function moduleOf(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : `(native) ${functionName || 'anonymous'}`;
  const nm = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (nm) return nm[1] as string;
  const ours = /\/packages\/([^/]+)\/(?:src|dist)\/(.+?)\.(?:ts|js)$/.exec(url);
  if (ours) return `@messaging-server/${ours[1] as string} ${ours[2] as string}`;
  if (url.startsWith('node:')) {
    const parts = url.slice(5).split('/');
    return `node:${parts[0] === 'internal' ? `internal/${parts[1] ?? ''}` : (parts[0] ?? '')}`.replace(/\.js$/, '');
  }
  return url.replace(/^file:\/\//, '');
}

export function summarizeProfile(profile: CpuProfile, top = 25): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  let total = 0;
  let idle = 0;
  const modules = new Map<string, number>();
  const functions = new Map<string, { fn: string; where: string; us: number }>();
  for (const [id, us] of self) {
    const node = byId.get(id);
    if (!node) continue;
    total += us;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') {
      idle += us;
      continue;
    }
    const module = moduleOf(url, functionName);
    modules.set(module, (modules.get(module) ?? 0) + us);
    const key = `${functionName}|${url}|${String(lineNumber)}`;
    const entry = functions.get(key) ?? { fn: functionName || '(anonymous)', where: `${module}:${String(lineNumber + 1)}`, us: 0 };
    entry.us += us;
    functions.set(key, entry);
  }
  const busy = total - idle;
  return {
    totalMs: total / 1000,
    busyMs: busy / 1000,
    byModule: [...modules]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([module, us]) => ({ module, ms: us / 1000, share: us / busy })),
    byFunction: [...functions.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((e) => ({ fn: e.fn, where: e.where, ms: e.us / 1000, share: e.us / busy })),
  };
}

/** Where a share is taken: the whole profile, or a span on its clock (monotonic µs, the clock of `startTime`). */
export interface SampleSpan {
  startUs: number;
  endUs: number;
}

export interface InclusiveShare {
  /** Non-idle sampled time in the span. */
  busyMs: number;
  /** Time of the samples with at least one matching frame on their stack, each sample once. */
  ms: number;
  share: number;
  /** The same time by the outermost matching frame of each sample's stack: who called into the module. */
  byEntry: { fn: string; ms: number; share: number }[];
}

/**
 * Inclusive time of the frames whose source URL `matches` (a module's own functions and all they call, in Node and
 * V8 too), as a share of the busy samples: a sample counts once however many matching frames its stack holds.
 * Garbage collection shows as its own root-level frame, so what a module's allocations cost later is not in it.
 */
export function inclusiveShare(profile: CpuProfile, matches: (url: string) => boolean, span?: SampleSpan): InclusiveShare {
  const entryOf = outermostMatching(profile.nodes, matches);
  const idleIds = new Set(profile.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
  let at = profile.startTime;
  let busy = 0;
  let inside = 0;
  const byEntry = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    at += us;
    if ((span && (at < span.startUs || at > span.endUs)) || idleIds.has(id)) return;
    busy += us;
    const entry = entryOf.get(id);
    if (entry === undefined) return;
    inside += us;
    byEntry.set(entry, (byEntry.get(entry) ?? 0) + us);
  });
  const share = (us: number): number => (busy === 0 ? 0 : us / busy);
  return {
    busyMs: busy / 1000,
    ms: inside / 1000,
    share: share(inside),
    byEntry: [...byEntry].sort((a, b) => b[1] - a[1]).map(([fn, us]) => ({ fn, ms: us / 1000, share: share(us) })),
  };
}

/** For each call-tree node with a matching frame at or above it, that outermost frame's function name. */
function outermostMatching(nodes: ProfileNode[], matches: (url: string) => boolean): Map<number, string> {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const children = new Set(nodes.flatMap((n) => n.children ?? []));
  const out = new Map<number, string>();
  // Depth first from the roots, carrying the outermost match down; iterative, as call trees can be deep.
  const stack: { id: number; entry: string | undefined }[] = nodes.filter((n) => !children.has(n.id)).map((n) => ({ id: n.id, entry: undefined }));
  for (let item = stack.pop(); item; item = stack.pop()) {
    const node = byId.get(item.id);
    if (!node) continue;
    const entry = item.entry ?? (matches(node.callFrame.url) ? node.callFrame.functionName || '(anonymous)' : undefined);
    if (entry !== undefined) out.set(node.id, entry);
    for (const child of node.children ?? []) stack.push({ id: child, entry });
  }
  return out;
}

export function formatInclusive(title: string, s: InclusiveShare): string {
  const lines = [`== ${title}: ${s.ms.toFixed(0)} ms of ${s.busyMs.toFixed(0)} ms busy = ${(s.share * 100).toFixed(2)} % inclusive`];
  for (const e of s.byEntry) lines.push(`${(e.share * 100).toFixed(2).padStart(6)} %  ${e.ms.toFixed(0).padStart(6)} ms  via ${e.fn}`);
  return lines.join('\n');
}

export function formatSummary(title: string, s: ProfileSummary): string {
  const lines = [`== ${title}: ${s.busyMs.toFixed(0)} ms busy of ${s.totalMs.toFixed(0)} ms sampled`, '-- self time by module'];
  for (const m of s.byModule) lines.push(`${(m.share * 100).toFixed(1).padStart(5)} %  ${m.ms.toFixed(0).padStart(6)} ms  ${m.module}`);
  lines.push('-- self time by function');
  for (const f of s.byFunction) lines.push(`${(f.share * 100).toFixed(1).padStart(5)} %  ${f.ms.toFixed(0).padStart(6)} ms  ${f.fn}  (${f.where})`);
  return lines.join('\n');
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop() ?? '\0')) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: cpuprofile-summary.ts <file.cpuprofile> [top]\n');
    process.exit(2);
  }
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  process.stdout.write(`${formatSummary(file, summarizeProfile(profile, Number(process.argv[3] ?? 25)))}\n`);
}
