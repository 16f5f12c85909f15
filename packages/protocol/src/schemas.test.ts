import { expect } from 'chai';
import { MAX_CONTENT_DEPTH, nestedDeeperThan } from './limits.js';
import { parseClientFrame } from './schemas.js';

const nested = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`;

describe('client frame validation: content depth', () => {
  it('counts arrays and objects, not scalars', () => {
    expect(nestedDeeperThan(1, 0)).to.equal(false);
    expect(nestedDeeperThan([], 0)).to.equal(true);
    expect(nestedDeeperThan([], 1)).to.equal(false);
    expect(nestedDeeperThan({ a: [{ b: 1 }] }, 2)).to.equal(true);
    expect(nestedDeeperThan({ a: [{ b: 1 }] }, 3)).to.equal(false);
  });

  it(`accepts content ${String(MAX_CONTENT_DEPTH)} deep and refuses one level more, with the frame's id`, () => {
    const at = parseClientFrame(`{"to":"bob","content":${nested(MAX_CONTENT_DEPTH)},"id":"ok"}`);
    expect(at.ok).to.equal(true);
    const over = parseClientFrame(`{"to":"bob","content":${nested(MAX_CONTENT_DEPTH + 1)},"id":"deep"}`);
    expect(over).to.deep.equal({ ok: false, message: `content is nested deeper than ${String(MAX_CONTENT_DEPTH)} levels`, id: 'deep' });
  });

  it('judges content nested 30,000 deep without overflowing the stack', () => {
    const frame = `{"to":"bob","content":${nested(30_000)},"id":"d"}`;
    expect(frame.length).to.be.below(65_536);
    expect(parseClientFrame(frame)).to.include({ ok: false, id: 'd' });
    const objects = `{"to":"bob","content":${'{"a":'.repeat(12_000)}1${'}'.repeat(12_000)},"id":"o"}`;
    expect(parseClientFrame(objects)).to.include({ ok: false, id: 'o' });
  });
});
