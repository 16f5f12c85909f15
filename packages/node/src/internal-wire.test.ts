import { expect } from 'chai';
import { isPastDeadline, parseDeliverRequest, parseDeliverResponse, parseOutcomes } from './internal-wire.js';

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

  it('carries a delivery deadline and tells when it has passed', function () {
    const request = parseDeliverRequest({ fromNode: 'a', replyTo: 'http://a', messages: [], deadline: 1000 });
    if (!request) throw new Error('expected a request');
    expect(request.deadline).to.equal(1000);
    expect(isPastDeadline(request, 999)).to.equal(false);
    expect(isPastDeadline(request, 1001)).to.equal(true);
    const withoutDeadline = parseDeliverRequest({ fromNode: 'a', replyTo: 'http://a', messages: [], deadline: 'soon' });
    expect(withoutDeadline && isPastDeadline(withoutDeadline, Number.MAX_SAFE_INTEGER)).to.equal(false);
  });
});
