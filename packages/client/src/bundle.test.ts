// The browser bundle as users get it: small, without ajv, and runnable where neither `global` nor `process` exists.
import { expect } from 'chai';
import { createContext, runInContext } from 'node:vm';
import { gzipSync } from 'node:zlib';
// @ts-expect-error: a build script in plain JavaScript, without type declarations
import { bundleClient } from '../scripts/build-browser.mjs';

interface Bundle {
  bytes: number;
  inputs: string[];
  text: string;
}

/** The IIFE's budget. 74 KiB minified (23 KiB gzipped) when set; sockjs-client's prebuilt bundle is 56 KiB of it. */
const BUDGET_BYTES = 80 * 1024;
const BUDGET_GZIP_BYTES = 25 * 1024;

describe('client browser bundle', function () {
  this.timeout(20_000);
  let iife: Bundle;
  let esm: Bundle;

  before(async () => {
    iife = (await bundleClient({ format: 'iife', write: false })) as Bundle;
    esm = (await bundleClient({ format: 'esm', write: false })) as Bundle;
  });

  it(`stays under its size budget (${String(BUDGET_BYTES / 1024)} KiB minified, ${String(BUDGET_GZIP_BYTES / 1024)} KiB gzipped)`, () => {
    const gzipped = gzipSync(iife.text).length;
    expect(iife.bytes, `${String(iife.bytes)} bytes`).to.be.below(BUDGET_BYTES);
    expect(gzipped, `${String(gzipped)} bytes gzipped`).to.be.below(BUDGET_GZIP_BYTES);
  });

  it('contains no ajv and no protocol schemas, in either format', () => {
    for (const bundle of [iife, esm]) {
      expect(bundle.inputs.filter((input) => /ajv|schemas/.test(input))).to.deep.equal([]);
      expect(bundle.inputs.some((input) => input.includes('sockjs-client/dist/sockjs.min.js'))).to.equal(true);
    }
  });

  it('loads in a context with neither `global` nor `process` and puts the SDK on window.MessagingServer', () => {
    const window: Record<string, unknown> = { setTimeout, clearTimeout, console, TextEncoder, URL };
    window['window'] = window;
    window['self'] = window;
    const context = createContext(window);
    runInContext(iife.text, context, { filename: 'messaging-client.js' });
    expect(runInContext('typeof global + " " + typeof process', context)).to.equal('undefined undefined');
    const sdk = window['MessagingServer'] as Record<string, unknown>;
    expect(sdk).to.be.an('object');
    for (const name of ['connect', 'MessagingClient', 'createPeerConnection', 'listenForCalls', 'MessagingError']) {
      expect(sdk[name], name).to.be.a('function');
    }
  });
});
