/**
 * What every browser test shares: a network namespace (Chromium gathers ICE candidates only on non-loopback
 * interfaces, and the namespace gives it one that leads nowhere), the e2e driver inside it (cluster and Chromium),
 * the driver's diagnostics after a failed test, a scratch directory, and the screenshot check.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { E2eDriver, type RemotePage } from './e2e-remote.js';
import { createNetns, type Netns } from './netns.js';

export interface BrowserWorld {
  readonly netns: Netns;
  readonly driver: E2eDriver;
  /** A directory of this describe's own, removed after it. */
  readonly tmp: string;
}

interface Diagnostics {
  pages: unknown;
  clusterLogs: string;
  turnLogs?: string;
}

/**
 * Registers the hooks of a describe that drives browsers; call it before the describe's own `before`, which then
 * starts the cluster and Chromium through `world().driver`. `moreDiagnostics` adds what only this describe knows.
 */
export function useBrowserWorld(label: string, moreDiagnostics?: () => Promise<string>): () => BrowserWorld {
  let netns: Netns | undefined;
  let driver: E2eDriver | undefined;
  let tmp: string | undefined;

  before(async function () {
    this.timeout(60_000);
    tmp = await mkdtemp(join(tmpdir(), `msg-${label.replace(/\W+/g, '-')}-`));
    netns = await createNetns();
    driver = new E2eDriver(netns);
    await driver.ready;
  });

  afterEach(async function () {
    if (this.currentTest?.state !== 'failed' || !driver) return;
    const info = await driver.call<Diagnostics>('diagnostics').catch((error: unknown): Diagnostics => ({ pages: String(error), clusterLogs: '' }));
    const more = moreDiagnostics ? await moreDiagnostics().catch((error: unknown) => String(error)) : '';
    console.error(
      [
        `${label} diagnostics`,
        `pages: ${JSON.stringify(info.pages, null, 1)}`,
        more,
        `cluster logs (tail):\n${info.clusterLogs}`,
        info.turnLogs === undefined ? '' : `coturn:\n${info.turnLogs}`,
        `driver stderr:\n${driver.logs()}`,
      ]
        .filter((part) => part !== '')
        .join('\n'),
    );
  });

  after(async function () {
    this.timeout(60_000);
    try {
      await driver?.stop();
    } finally {
      await netns?.remove();
      if (tmp) await rm(tmp, { recursive: true, force: true });
    }
  });

  return () => {
    if (!netns || !driver || !tmp) throw new Error(`${label}: the browser world is not up (its before hook failed or has not run)`);
    return { netns, driver, tmp };
  };
}

/**
 * Screenshots `page` into `committedPath` when UPDATE_SCREENSHOT=1 (the README's picture), else into `tmp`, and checks
 * that what landed on disk is the whole PNG the browser made.
 */
export async function screenshotChecked(page: RemotePage, committedPath: string, tmp: string): Promise<Buffer> {
  const path = process.env['UPDATE_SCREENSHOT'] === '1' ? committedPath : join(tmp, committedPath.split('/').at(-1) ?? 'screenshot.png');
  const bytes = await page.screenshot(path);
  const png = await readFile(path);
  expect(png.length).to.equal(bytes);
  expect(png.subarray(0, 8).toString('hex')).to.equal('89504e470d0a1a0a');
  return png;
}
