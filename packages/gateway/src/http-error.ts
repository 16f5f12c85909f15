import type { Middleware } from 'koa';
import { httpStatusOf, type ErrorBody, type ErrorCode } from '@messaging-server/protocol';
import type { Logger } from '@messaging-server/core';

/** An answer the client is meant to see: a contract error code (its status from the code table) with a message safe to expose. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  readonly status: number;
  readonly headers: Record<string, string>;
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { headers?: Record<string, string>; cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.status = httpStatusOf(code);
    this.headers = options?.headers ?? {};
  }
}

export function errorBody(code: ErrorCode, message: string): ErrorBody {
  return { error: { code, message } };
}

/**
 * Turns every thrown error into the contract's JSON error body. HttpErrors are exposed as they are; anything else
 * is a 500 whose details go only to the log (koa's `expose` idea).
 */
export function errorMiddleware(logger: Logger): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      if (error instanceof HttpError) {
        ctx.status = error.status;
        for (const [name, value] of Object.entries(error.headers)) ctx.set(name, value);
        ctx.body = errorBody(error.code, error.message);
        return;
      }
      const log = (ctx.state as { log?: Logger }).log ?? logger;
      log.error({ err: error, method: ctx.method, path: ctx.path }, 'request failed');
      ctx.status = 500;
      ctx.body = errorBody('INTERNAL', 'internal error');
    }
  };
}
