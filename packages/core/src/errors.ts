/**
 * Errors that cross package boundaries. Adapters (etcd3, memjs, undici) translate their library errors into these
 * at their edge, so callers branch on a stable `code` and never on a library's error class.
 */
export type BackendErrorCode =
  | 'REGISTRY_UNAVAILABLE'
  | 'ALREADY_REGISTERED'
  | 'SESSION_STORE_UNAVAILABLE'
  | 'PEER_UNREACHABLE'
  | 'PEER_TIMEOUT'
  | 'PEER_REJECTED';

export class BackendError extends Error {
  override readonly name = 'BackendError';
  /** The peer's HTTP status, set on `PEER_REJECTED`. */
  readonly status?: number;
  constructor(
    readonly code: BackendErrorCode,
    message: string,
    options?: { cause?: unknown; status?: number },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    if (options?.status !== undefined) this.status = options.status;
  }
}

export function isBackendError(error: unknown, code?: BackendErrorCode): error is BackendError {
  return error instanceof BackendError && (code === undefined || error.code === code);
}
