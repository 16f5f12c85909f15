import type { FrameErrorCode, JsonValue, NodeId } from '@messaging-server/protocol';
import { FRAME_ERROR_CODES, isValidUserId, MESSAGE_ID_MAX_LENGTH, parseNodeId } from '@messaging-server/protocol';

/**
 * Node-to-node internal API (on the internal port, guarded by `x-cluster-secret` when configured).
 *
 * - POST REPLACE_PATH `{userId, listeningKey}` → 200 `{closed}`: closes (4503) this node's connection holding that
 *   (old) key. Called by the gateway when a /connect replaced a session.
 * - POST DRAIN_PATH → 202 `{draining: true}`: starts the drain (msgctl drain).
 * - POST DELIVER_PATH `{fromNode, replyTo, messages: ForwardedMessage[]}` → 200 `{results: DeliverResult[]}`, one
 *   result per message, same order. A sender node keeps one such request in flight per destination node, so
 *   messages from one sender to one recipient stay in order.
 * - POST OUTCOMES_PATH `{outcomes: OutcomeReport[]}` → 200 `{accepted}`: final outcomes of messages that the
 *   recipient node answered `pending` for (held in its pending queue, or written to a connection with receipts on
 *   and not confirmed yet), reported to the sender's node.
 */
export { DRAIN_PATH, REPLACE_PATH } from '@messaging-server/core';
export const DELIVER_PATH = '/internal/v1/deliver';
export const OUTCOMES_PATH = '/internal/v1/outcomes';
export { CLUSTER_SECRET_HEADER } from '@messaging-server/core';

export interface ForwardedMessage {
  from: string;
  to: string;
  content: JsonValue;
  id?: string;
  /** The sender's connection id, echoed in a later outcome report. */
  cid: string;
}

export interface DeliverRequest {
  fromNode: NodeId;
  replyTo: string;
  messages: ForwardedMessage[];
  /**
   * Milliseconds the sender still waits for the answer when it sends the request, less a margin for the answer's
   * way back. The recipient measures it on its own monotonic clock from the moment it sees the request, and refuses
   * the request whole once it is spent, so a stalled recipient never delivers a message its sender was told had
   * failed. Relative, so clock skew between nodes changes nothing (an absolute `deadline` of older senders is
   * ignored: with a receiver 1.25 s ahead it failed every message). Time in transit before the recipient sees the
   * request is not counted.
   */
  budgetMs?: number;
}

/**
 * `moving` (v1.1): the recipient's connection here ended without its own clean close; the sender's node holds the
 * message until the recipient is back (or answers EXPIRED when the resume window ends).
 */
export type DeliverResult =
  | { status: 'delivered' }
  /**
   * `unconfirmed` (v1.2): written to a connection with receipts on. The sender's node keeps the message until the
   * outcome report, so it survives this node's crash too. An older sender node reads a plain `pending`.
   */
  | { status: 'pending'; unconfirmed?: true }
  /** `movedAgoMs`: how long ago the user started moving, by the answering node's clock (relative: clocks differ). */
  | { status: 'moving'; movedAgoMs?: number }
  | { status: 'error'; code: FrameErrorCode };

export interface DeliverResponse {
  results: DeliverResult[];
}

export interface OutcomeReport {
  /** The sender's userId. */
  userId: string;
  cid: string;
  /** Absent for an id-less message (only failures of those are reported). */
  id?: string;
  result: 'delivered' | FrameErrorCode;
  /** v1.2: the message was answered `pending` + `unconfirmed`; its sender's node kept it and drops a report it no longer expects. */
  kept?: true;
  /**
   * v1.2: written to a connection that ended unconfirmed while its user is moving: the sender's node holds it and
   * delivers it again after the user's next welcome. `result` is then RELAY_FAILED, what an older sender node answers.
   */
  redeliver?: true;
}

const FRAME_CODES = new Set<string>(FRAME_ERROR_CODES);

export function isFrameErrorCode(value: unknown): value is FrameErrorCode {
  return typeof value === 'string' && FRAME_CODES.has(value);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function isMessageId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MESSAGE_ID_MAX_LENGTH;
}

export function parseDeliverRequest(value: unknown): DeliverRequest | undefined {
  const fromNode = isObject(value) ? parseNodeId(value['fromNode']) : undefined;
  if (!isObject(value) || fromNode === undefined || typeof value['replyTo'] !== 'string') return undefined;
  const raw = value['messages'];
  if (!Array.isArray(raw)) return undefined;
  const messages: ForwardedMessage[] = [];
  for (const m of raw) {
    if (!isObject(m) || !isValidUserId(m['from']) || !isValidUserId(m['to']) || typeof m['cid'] !== 'string') return undefined;
    if (!('content' in m)) return undefined;
    const message: ForwardedMessage = { from: m['from'], to: m['to'], content: m['content'] as JsonValue, cid: m['cid'] };
    if (m['id'] !== undefined) {
      if (!isMessageId(m['id'])) return undefined;
      message.id = m['id'];
    }
    messages.push(message);
  }
  const request: DeliverRequest = { fromNode, replyTo: value['replyTo'], messages };
  const budget = value['budgetMs'];
  if (typeof budget === 'number' && Number.isFinite(budget) && budget >= 0) request.budgetMs = budget;
  return request;
}

/** True when the sender of this request, seen at `arrivedAt` (performance.now()), has already timed it out. */
export function isOverBudget(request: DeliverRequest, arrivedAt: number, now = performance.now()): boolean {
  return request.budgetMs !== undefined && now - arrivedAt > request.budgetMs;
}

/** Returns the results when the answer has exactly `count` well-formed results, else undefined. */
export function parseDeliverResponse(value: unknown, count: number): DeliverResult[] | undefined {
  if (!isObject(value) || !Array.isArray(value['results']) || value['results'].length !== count) return undefined;
  const results: DeliverResult[] = [];
  for (const r of value['results'] as unknown[]) {
    if (!isObject(r)) return undefined;
    if (r['status'] === 'pending' && r['unconfirmed'] === true) results.push({ status: 'pending', unconfirmed: true });
    else if (r['status'] === 'delivered' || r['status'] === 'pending') results.push({ status: r['status'] });
    else if (r['status'] === 'moving') results.push(movingResult(r['movedAgoMs']));
    else if (r['status'] === 'error') results.push({ status: 'error', code: isFrameErrorCode(r['code']) ? r['code'] : 'RELAY_FAILED' });
    else return undefined;
  }
  return results;
}

export function parseOutcomes(value: unknown): OutcomeReport[] | undefined {
  if (!isObject(value) || !Array.isArray(value['outcomes'])) return undefined;
  const outcomes: OutcomeReport[] = [];
  for (const o of value['outcomes'] as unknown[]) {
    if (!isObject(o) || typeof o['userId'] !== 'string' || typeof o['cid'] !== 'string') return undefined;
    if (o['id'] !== undefined && !isMessageId(o['id'])) return undefined;
    const result = o['result'];
    if (result !== 'delivered' && !isFrameErrorCode(result)) return undefined;
    const report: OutcomeReport = { userId: o['userId'], cid: o['cid'], result };
    if (o['id'] !== undefined) report.id = o['id'];
    if (o['kept'] === true) report.kept = true;
    if (o['redeliver'] === true) report.redeliver = true;
    outcomes.push(report);
  }
  return outcomes;
}

function movingResult(movedAgoMs: unknown): DeliverResult {
  return typeof movedAgoMs === 'number' && Number.isFinite(movedAgoMs) && movedAgoMs >= 0 ? { status: 'moving', movedAgoMs } : { status: 'moving' };
}
