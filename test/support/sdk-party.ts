import { MessagingClient, MessagingError, type ConnectOptions } from '@messaging-server/client';
import type { JsonValue } from '@messaging-server/protocol';
import type { ContractMessage, ContractOutcome } from './contract-client.js';

/**
 * The SDK in the same shape as ContractClient, so one scenario drives both: a MessagingClient on the websocket
 * transport, with its own reconnects, re-sends and repeat dropping, recording each move (a close, then a welcome).
 */
export class SdkParty {
  readonly welcomes: { nodeId: string; at: number }[] = [];
  readonly closes: { code: number; reason: string; at: number }[] = [];
  readonly states: string[] = [];
  /** Called for each message the SDK hands to the application (after it dropped repeats). */
  onMessageHook: (message: ContractMessage) => void = () => undefined;
  private readonly client: MessagingClient;

  constructor(
    readonly userId: string,
    gatewayUrl: string,
    /** Options over the defaults below (receipts, pings). */
    options: Partial<ConnectOptions> = {},
  ) {
    this.client = new MessagingClient({
      gatewayUrl,
      userId,
      sockjsOptions: { transports: ['websocket'], timeout: 10_000 },
      pingIntervalMs: 0,
      sendTimeoutMs: 30_000,
      connectTimeoutMs: 30_000,
      ...options,
    });
    this.client.on('session', ({ nodeId }) => this.welcomes.push({ nodeId, at: Date.now() }));
    this.client.on('state', (state) => {
      this.states.push(state);
      if (state === 'reconnecting') this.closes.push({ code: 0, reason: 'reconnecting', at: Date.now() });
    });
    this.client.on('message', (m) => this.onMessageHook({ from: m.from, id: m.id ?? '', content: m.content }));
  }

  get nodeId(): string | undefined {
    return this.client.nodeId;
  }

  get repeatsDropped(): number {
    return this.client.repeatsDropped;
  }

  start(): Promise<void> {
    return this.client.start();
  }

  send(to: string, content: JsonValue): Promise<ContractOutcome> {
    return this.client.send(to, content).then(
      (): ContractOutcome => ({ kind: 'acked' }),
      (error: unknown): ContractOutcome => ({ kind: 'error', code: error instanceof MessagingError ? error.code : String(error) }),
    );
  }

  stop(): void {
    this.client.close();
  }
}
