// What a process keeps, as opposed to what it has not yet collected: RSS and heap size follow V8's decisions on when
// to collect, which depend on the load of the machine; the heap after a forced full collection does not. The process
// is started with `--inspect` on loopback (test only) and asked over the DevTools protocol.
import WebSocket from 'ws';

/** `NODE_OPTIONS` for a process whose retained memory a test will read on `port`. */
export function inspectOptions(port: number): string {
  return `--inspect=127.0.0.1:${String(port)}`;
}

export interface RetainedMemory {
  /** V8 heap in use after a full collection. */
  heapUsedKiB: number;
  /** Memory outside the heap held by live objects (Buffers, ArrayBuffers). */
  externalKiB: number;
}

/** Forces a full garbage collection in the process inspected on `port`, then reads its memory usage. */
export async function retainedMemory(port: number): Promise<RetainedMemory> {
  const targets = (await (await fetch(`http://127.0.0.1:${String(port)}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
  const target = targets[0];
  if (!target) throw new Error(`no inspector target on port ${String(port)}`);
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  try {
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const call = devtoolsCaller(ws);
    await call('HeapProfiler.collectGarbage');
    const answer = (await call('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true })) as { result: { value: string } };
    const usage = JSON.parse(answer.result.value) as NodeJS.MemoryUsage;
    return { heapUsedKiB: Math.round(usage.heapUsed / 1024), externalKiB: Math.round(usage.external / 1024) };
  } finally {
    ws.close();
  }
}

function devtoolsCaller(ws: WebSocket): (method: string, params?: object) => Promise<unknown> {
  let nextId = 0;
  const waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  ws.on('message', (data) => {
    const reply = JSON.parse(String(data)) as { id?: number; result?: unknown; error?: { message: string } };
    const caller = reply.id === undefined ? undefined : waiting.get(reply.id);
    if (!caller || reply.id === undefined) return;
    waiting.delete(reply.id);
    if (reply.error) caller.reject(new Error(reply.error.message));
    else caller.resolve(reply.result);
  });
  return (method, params = {}) =>
    new Promise((resolve, reject) => {
      nextId += 1;
      waiting.set(nextId, { resolve, reject });
      ws.send(JSON.stringify({ id: nextId, method, params }));
    });
}
