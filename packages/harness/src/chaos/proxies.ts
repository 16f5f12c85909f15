import { freePort } from '@messaging-server/testkit';
import { FreezingProxy } from '@messaging-server/testkit';

/**
 * The network between some clients and their nodes, for the silent-death fault: one FreezingProxy (test/support) on
 * 127.0.0.1 per node port, started the first time a routed client is sent to that node. A routed client gets
 * `fetch` below as its SDK's fetch: it rewrites the `listeningAddress` of every `/connect` answer to the proxy of
 * that node, so the client's SockJS traffic (and only that) passes through it. The nodes, the gateways and every
 * other client are untouched, and nodes added mid-run (scale-out, kill) get their proxy when first needed.
 */
export class NodeProxies {
  readonly #byPort = new Map<number, Promise<{ proxy: FreezingProxy; port: number }>>();
  #closed = false;

  /** A `fetch` for the SDK: the real one, with `/connect` answers pointed at the proxies. */
  readonly fetch: typeof fetch = async (input, init) => {
    const response = await globalThis.fetch(input, init);
    if (!response.ok) return response;
    const body = (await response.json()) as { listeningAddress?: unknown };
    if (typeof body.listeningAddress === 'string') body.listeningAddress = await this.rewrite(body.listeningAddress);
    return new Response(JSON.stringify(body), { status: response.status, headers: { 'content-type': 'application/json' } });
  };

  /** `http://127.0.0.1:<node>/ws` → `http://127.0.0.1:<its proxy>/ws`. */
  async rewrite(listeningAddress: string): Promise<string> {
    const url = new URL(listeningAddress);
    const { port } = await this.proxyFor(url.hostname, Number(url.port));
    url.hostname = '127.0.0.1';
    url.port = String(port);
    return url.toString().replace(/\/$/, listeningAddress.endsWith('/') ? '/' : '');
  }

  /**
   * Every routed websocket of these users goes silent in both directions, with no FIN and no RST; connections they
   * open afterwards are forwarded normally. Returns how many connections went silent per user.
   */
  async freeze(userIds: readonly string[]): Promise<Map<string, number>> {
    const frozen = new Map<string, number>();
    const proxies = await Promise.all(this.#byPort.values());
    for (const userId of userIds) {
      // Delimited, so pair1-b never matches pair11-b.
      const pattern = new RegExp(`[?&]userId=${encodeURIComponent(userId).replace(/[.*+?^${}()|[\]\\-]/g, '\\$&')}(?:[&\\s#]|$)`);
      let n = 0;
      for (const { proxy } of proxies) n += proxy.freeze((head) => head.includes('/websocket') && pattern.test(head.split('\r\n')[0] ?? ''));
      frozen.set(userId, n);
    }
    return frozen;
  }

  get count(): number {
    return this.#byPort.size;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const proxies = await Promise.allSettled(this.#byPort.values());
    await Promise.all(proxies.map((p) => (p.status === 'fulfilled' ? p.value.proxy.close() : undefined)));
  }

  private proxyFor(host: string, targetPort: number): Promise<{ proxy: FreezingProxy; port: number }> {
    if (this.#closed) return Promise.reject(new Error('the proxies are closed'));
    if (host !== '127.0.0.1' && host !== 'localhost') return Promise.reject(new Error(`cannot proxy a node on ${host}`));
    let entry = this.#byPort.get(targetPort);
    if (!entry) {
      entry = (async () => {
        const proxy = new FreezingProxy(targetPort);
        const port = await freePort();
        await proxy.listen(port);
        return { proxy, port };
      })();
      // A port taken between freePort and listen: the next /connect of the client tries again.
      entry.catch(() => this.#byPort.delete(targetPort));
      this.#byPort.set(targetPort, entry);
    }
    return entry;
  }
}
