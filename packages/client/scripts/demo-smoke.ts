// Manual smoke run of the demo page in Chromium against the in-test mini server (not the real cluster):
//   node --import tsx packages/client/scripts/demo-smoke.ts
// Two pages connect, call, chat over the data channel, add a fake camera mid-call, and hang up.
import { mkdtemp, rm } from 'node:fs/promises';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { startMiniServer } from '../src/testing/mini-server.js';
import { buildBrowser } from './build-browser.mjs';

// Chromium gathers ICE candidates only on non-loopback interfaces.
const host =
  Object.values(networkInterfaces())
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal)?.address ?? '127.0.0.1';

await buildBrowser({ minify: false });
const server = await startMiniServer({ publicDir: join(import.meta.dirname, '..', 'dist', 'browser'), host });
const profile = await mkdtemp(join(tmpdir(), 'demo-smoke-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env['CHROMIUM'] ?? '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-dev-shm-usage',
    '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream',
    '--disable-features=WebRtcHideLocalIpsWithMdns',
    // getUserMedia needs a secure context; the mini server is plain http on a LAN address.
    `--unsafely-treat-insecure-origin-as-secure=${server.url}`,
  ],
});
await context.addInitScript('window.__name = f => f');
const step = (what: string) => console.log(`ok: ${what}`);
const demo = <T>(page: Page, expr: string) => page.evaluate(expr) as Promise<T>;

try {
  const pages = [await context.newPage(), await context.newPage()] as const;
  const [alice, bob] = pages;
  for (const page of pages) page.on('pageerror', (e) => console.error('page error:', e.message));
  for (const [page, name] of [[alice, 'alice'], [bob, 'bob']] as const) {
    await page.goto(server.url);
    await page.fill('#userId', name);
    await page.click('#connect');
    await page.waitForFunction(() => document.querySelector('#state')?.textContent === 'open');
  }
  step(`both connected, node ${await alice.textContent('#node-id')}`);

  await alice.fill('#peer', 'bob');
  await alice.click('#call');
  for (const page of pages) await page.waitForFunction('window.demo.channelState === "open"', null, { timeout: 10_000 });
  step(`data channel open, pc ${await demo<string>(alice, 'window.demo.pc.connectionState')}, ice ${await demo<string>(bob, 'window.demo.iceState')}`);

  await alice.fill('#chat-input', 'hello bob');
  await alice.click('#chat-send');
  await bob.waitForFunction('window.demo.lastChannelMessage === "hello bob"');
  await bob.fill('#chat-input', 'hi alice');
  await bob.press('#chat-input', 'Enter');
  await alice.waitForFunction('window.demo.lastChannelMessage === "hi alice"');
  step(`chat both ways: ${JSON.stringify(await bob.textContent('#chat-log'))}`);

  await alice.click('#camera');
  await bob.waitForFunction(() => {
    const video = document.querySelector('#remote-video') as HTMLVideoElement;
    return video.srcObject !== null && video.videoWidth > 0;
  }, null, { timeout: 10_000 });
  step('camera added mid-call, bob sees video (renegotiation)');

  const log = (await alice.textContent('#signal-log')) ?? '';
  if (/v=0|candidate:|listeningKey|a=ice/.test(log)) throw new Error('signal log leaks SDP or candidates');
  const signals = await demo<{ direction: string; type: string }[]>(alice, 'window.demo.signals');
  step(`signal log clean; alice signals: ${[...new Set(signals.map((s) => `${s.direction}:${s.type}`))].join(' ')}`);

  await alice.click('#hangup');
  await bob.waitForFunction('window.demo.call === null && window.demo.pc === null');
  step('hangup reached bob');

  await bob.setViewportSize({ width: 375, height: 740 });
  const overflow = await bob.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) throw new Error(`page overflows a phone width by ${overflow}px`);
  await bob.screenshot({ path: join(tmpdir(), 'demo-phone.png'), fullPage: true });
  await alice.setViewportSize({ width: 1100, height: 900 });
  await alice.screenshot({ path: join(tmpdir(), 'demo-desktop.png'), fullPage: true });
  step(`fits a phone width; screenshots in ${tmpdir()}/demo-{phone,desktop}.png`);
} catch (error) {
  for (const page of context.pages().filter((p) => p.url().startsWith(server.url))) {
    console.error(await page.textContent('#signal-log', { timeout: 1000 }));
  }
  throw error;
} finally {
  await context.close();
  await server.close();
  await rm(profile, { recursive: true, force: true });
}
