import { expect } from 'chai';
import { isOverBudget, parseDeliverRequest, parseDeliverResponse, parseOutcomes } from './internal-wire.js';

describe('internal wire parsing', function () {
  it('accepts well-formed requests and rejects malformed ones', function () {
    const good = { fromNode: 'a', replyTo: 'http://a', messages: [{ from: 'alice', to: 'bob', content: { x: 1 }, id: 'm1', cid: 'c' }] };
    expect(parseDeliverRequest(good)?.messages).to.have.length(1);
    expect(parseDeliverRequest({ ...good, messages: [{ from: 'alice', to: 'b o b', content: 1, cid: 'c' }] })).to.equal(undefined);
    expect(parseDeliverRequest({ ...good, messages: [{ from: 'alice', to: 'bob', cid: 'c' }] })).to.equal(undefined);
    expect(parseDeliverRequest([])).to.equal(undefined);
    expect(parseDeliverResponse({ results: [{ status: 'delivered' }] }, 2)).to.equal(undefined);
    expect(parseDeliverResponse({ results: [{ status: 'error', code: 'WHAT' }] }, 1)).to.deep.equal([{ status: 'error', code: 'RELAY_FAILED' }]);
    expect(parseOutcomes({ outcomes: [{ userId: 'alice', cid: 'c', result: 'EXPIRED' }] })).to.deep.equal([{ userId: 'alice', cid: 'c', result: 'EXPIRED' }]);
    expect(parseOutcomes({ outcomes: [{ userId: 'alice', cid: 'c', id: 'm', result: 'NOPE' }] })).to.equal(undefined);
  });

  it('carries a relative delivery budget, measured on the recipient clock from the arrival of the request', function () {
    const request = parseDeliverRequest({ fromNode: 'a', replyTo: 'http://a', messages: [], budgetMs: 1250 });
    if (!request) throw new Error('expected a request');
    expect(request.budgetMs).to.equal(1250);
    expect(isOverBudget(request, 10_000, 11_250)).to.equal(false);
    expect(isOverBudget(request, 10_000, 11_251)).to.equal(true);
    // An absolute wall-clock deadline (older senders) means nothing across skewed clocks: it is ignored.
    const old = parseDeliverRequest({ fromNode: 'a', replyTo: 'http://a', messages: [], deadline: 1 });
    expect(old && isOverBudget(old, 0, Number.MAX_SAFE_INTEGER)).to.equal(false);
    const garbled = parseDeliverRequest({ fromNode: 'a', replyTo: 'http://a', messages: [], budgetMs: -5 });
    expect(garbled?.budgetMs).to.equal(undefined);
  });
});
