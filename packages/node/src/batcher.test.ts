import { expect } from 'chai';
import { Batcher } from './batcher.js';
import { waitFor } from '@messaging-server/testkit';

/**
 * A Batcher whose first batch stays in flight until `release()`; every batch is recorded in `sent`. `limits` are the
 * constructor's optional arguments after `abandon`.
 */
function holdingFirstBatch(...limits: [maxItems?: number, sizeOf?: (n: number) => number, maxSize?: number, maxQueuedSize?: number]) {
  const sent: number[][] = [];
  const held = { release: (): void => undefined };
  const batcher = new Batcher<number>(
    async (batch) => {
      sent.push(batch);
      if (sent.length === 1) await new Promise<void>((resolve) => (held.release = resolve));
      return true;
    },
    () => undefined,
    ...limits,
  );
  return { batcher, sent, release: () => held.release() };
}

describe('Batcher', function () {
  it('keeps one batch in flight and sends what queued meanwhile together, in order', async function () {
    const { batcher, sent, release } = holdingFirstBatch();
    batcher.push(1);
    await waitFor(() => sent.length === 1, { what: 'first batch' });
    for (let i = 2; i <= 5; i += 1) batcher.push(i);
    expect(sent).to.have.length(1);
    release();
    await waitFor(() => batcher.idle, { what: 'idle' });
    expect(sent).to.deep.equal([[1], [2, 3, 4, 5]]);
  });

  it('hands everything queued behind a failed batch to abandon at once', async function () {
    const abandoned: number[] = [];
    let release!: () => void;
    const batcher = new Batcher<number>(
      async () => {
        await new Promise<void>((resolve) => (release = resolve));
        return false;
      },
      (items) => abandoned.push(...items),
    );
    batcher.push(1);
    await waitFor(() => release !== undefined, { what: 'in flight' });
    batcher.push(2);
    batcher.push(3);
    release();
    await waitFor(() => batcher.idle, { what: 'idle' });
    expect(abandoned).to.deep.equal([2, 3]);
  });

  it('splits batches by count and size', async function () {
    const sent: number[][] = [];
    const batcher = new Batcher<number>(
      async (batch) => {
        sent.push(batch);
        return true;
      },
      () => undefined,
      3,
      (n) => n,
      10,
    );
    for (const n of [1, 1, 1, 1, 6, 6, 20]) batcher.push(n);
    await waitFor(() => batcher.idle, { what: 'idle' });
    expect(sent).to.deep.equal([[1, 1, 1], [1, 6], [6], [20]]);
  });

  it('refuses items beyond maxQueuedSize while a batch is in flight, and takes them again once it drained', async function () {
    const { batcher, sent, release } = holdingFirstBatch(100, (n) => n, Number.POSITIVE_INFINITY, 10);
    expect(batcher.push(4)).to.equal(true);
    await waitFor(() => sent.length === 1, { what: 'first batch in flight' });
    expect([batcher.push(4), batcher.push(4), batcher.push(4), batcher.push(2)]).to.deep.equal([true, true, false, true]);
    expect(batcher.queued).to.equal(3);
    release();
    await waitFor(() => batcher.idle, { what: 'idle' });
    expect(sent).to.deep.equal([[4], [4, 4, 2]]);
    expect(batcher.push(9)).to.equal(true);
  });
});
