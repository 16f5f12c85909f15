/** Thrown when an operation did not settle before its deadline. */
export class DeadlineExceededError extends Error {
  override readonly name = 'DeadlineExceededError';
}

/**
 * Settles like `promise`, or rejects with DeadlineExceededError at `deadline` (epoch ms). The store promises its own
 * ~1 s bound; this one holds the gateway to its answer time even when a store does not keep that promise.
 */
export async function beforeDeadline<T>(promise: Promise<T>, deadline: number, what: string): Promise<T> {
  const remaining = deadline - Date.now();
  if (remaining <= 0) {
    promise.catch(() => undefined);
    throw new DeadlineExceededError(`${what} timed out`);
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new DeadlineExceededError(`${what} timed out`)), remaining);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
    promise.catch(() => undefined);
  }
}
