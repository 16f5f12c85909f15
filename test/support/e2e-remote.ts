import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { DriverRequest, DriverResponse } from './e2e-driver.js';
import type { Netns } from './netns.js';

const DRIVER = fileURLToPath(new URL('./e2e-driver.ts', import.meta.url));

/** A page in the namespace's browser, driven through the driver; the methods mirror Playwright's `Page`. */
export class RemotePage {
  constructor(
    private readonly driver: E2eDriver,
    readonly name: string,
  ) {}

  private act<T>(action: string, ...params: unknown[]): Promise<T> {
    return this.driver.call<T>('page', { name: this.name, action, params });
  }

  goto(url: string): Promise<unknown> {
    return this.act('goto', url);
  }
  fill(selector: string, value: string): Promise<void> {
    return this.act('fill', selector, value);
  }
  click(selector: string): Promise<void> {
    return this.act('click', selector);
  }
  press(selector: string, key: string): Promise<void> {
    return this.act('press', selector, key);
  }
  textContent(selector: string): Promise<string | null> {
    return this.act('textContent', selector);
  }
  /** Evaluates a JavaScript expression in the page (strings only: functions cannot cross the pipe). */
  evaluate<T>(expression: string): Promise<T> {
    return this.act('evaluate', expression);
  }
  async waitFor(expression: string, timeoutMs = 15_000): Promise<void> {
    await this.act('waitForFunction', expression, null, { timeout: timeoutMs, polling: 50 });
  }
  /** Resolves with the PNG's size in bytes. */
  screenshot(path: string): Promise<number> {
    return this.act('screenshot', { path, fullPage: true });
  }
  setViewportSize(width: number, height: number): Promise<void> {
    return this.act('setViewportSize', { width, height });
  }
  /** Closes the page as a user closing the tab does: its `pagehide` handlers run. */
  close(): Promise<void> {
    return this.act('close', { runBeforeUnload: true });
  }
  /** The listeningKeys this page got from `/connect`. */
  keys(): Promise<string[]> {
    return this.driver.call('keys', { name: this.name });
  }
  /** The page's WebSocket URLs and HTTP requests under `/n/<nodeId>/ws/`, without query strings. */
  traffic(): Promise<{ websockets: string[]; nodeRequests: string[] }> {
    return this.driver.call('traffic', { name: this.name });
  }
}

/** The test's handle on ./e2e-driver.ts, which runs inside the namespace. */
export class E2eDriver {
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private nextId = 1;
  private stderr = '';
  private exitError: Error | undefined;
  readonly ready: Promise<void>;
  readonly exited: Promise<void>;

  constructor(netns: Netns, env: NodeJS.ProcessEnv = {}) {
    const [command, ...prefix] = netns.exec;
    this.child = spawn(command ?? 'ip', [...prefix, process.execPath, '--conditions=source', '--import', 'tsx', DRIVER], {
      env: { ...process.env, ...env, E2E_ADDRESS: netns.address, E2E_NETNS: netns.name },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString('utf8')).slice(-20_000);
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitError = new Error(`e2e driver exited (code ${String(code)}, signal ${String(signal)}):\n${this.stderr.slice(-4000)}`);
        for (const { reject } of this.pending.values()) reject(this.exitError);
        this.pending.clear();
        resolve();
      });
    });
    this.ready = new Promise((resolve, reject) => {
      const lines = createInterface({ input: this.child.stdout as NodeJS.ReadableStream });
      lines.on('line', (line) => {
        let message: DriverResponse | { ready: true };
        try {
          message = JSON.parse(line) as DriverResponse | { ready: true };
        } catch {
          this.stderr += `${line}\n`; // stray output from a library
          return;
        }
        if ('ready' in message) return resolve();
        const waiter = this.pending.get(message.id);
        this.pending.delete(message.id);
        if (!waiter) return;
        if (message.ok) waiter.resolve(message.value);
        else waiter.reject(new Error(message.error));
      });
      void this.exited.then(() => reject(this.exitError));
    });
  }

  call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
    if (this.exitError) return Promise.reject(this.exitError);
    const request: DriverRequest = args === undefined ? { id: this.nextId++, cmd } : { id: this.nextId++, cmd, args };
    return new Promise<T>((resolve, reject) => {
      this.pending.set(request.id, { resolve: resolve as (value: unknown) => void, reject });
      this.child.stdin?.write(`${JSON.stringify(request)}\n`);
    });
  }

  async openPage(name: string): Promise<RemotePage> {
    await this.call('open', { name });
    return new RemotePage(this, name);
  }

  logs(): string {
    return this.stderr;
  }

  /** Asks the driver to stop the browser and the cluster, then makes sure it is gone. */
  async stop(graceMs = 30_000): Promise<void> {
    if (this.exitError) return;
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    try {
      await Promise.race([this.call('shutdown').catch(() => undefined), this.exited]);
      this.child.stdin?.end();
      await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
