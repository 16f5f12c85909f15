// The SDK's two browser bundles, each minified with a sourcemap: an IIFE that puts everything on
// `window.MessagingServer` (what the demo page loads) and an ES module for `<script type="module">`. The demo page is
// copied beside them, so that dist/browser/ alone is the gateway's public directory. Bundlers do not use these: they
// take the package's ESM build (dist/*.js) and resolve `#sockjs` through its "browser" condition themselves.
import { build } from 'esbuild';
import { copyFile, mkdir, readdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'browser');

const version = async (dir) => JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')).version;
const sockjsDir = dirname(fileURLToPath(import.meta.resolve('sockjs-client/package.json')));
// sockjs-client's prebuilt file carries its licence in a plain comment, which minification drops: keep it in a banner.
const banner =
  `/*! @messaging-server/client ${await version(root)} | MIT license | ` +
  `includes sockjs-client ${await version(sockjsDir)} (http://sockjs.org, MIT license) */`;

const FORMATS = {
  iife: { entry: 'browser.ts', file: 'messaging-client.js' },
  esm: { entry: 'index.ts', file: 'messaging-client.mjs' },
};

/**
 * Bundles the SDK for one format. Deliberately no `define` for `global` or `process`: the bundle must run without
 * the shims that sockjs-client's own sources would need. `write: false` keeps the result in memory (tests).
 * Resolves with the bundle's text and the inputs that contributed bytes to it.
 */
export async function bundleClient({ format = 'iife', minify = true, write = true } = {}) {
  const { entry, file } = FORMATS[format];
  const result = await build({
    entryPoints: [join(root, 'src', entry)],
    outfile: join(outdir, file),
    bundle: true,
    format,
    platform: 'browser',
    target: ['es2022'],
    conditions: ['source'],
    minify,
    sourcemap: true,
    metafile: true,
    legalComments: 'inline',
    banner: { js: banner },
    logLevel: 'warning',
    write,
  });
  const [path, output] = Object.entries(result.metafile.outputs).find(([name]) => name.endsWith(file));
  const inputs = Object.entries(output.inputs)
    .filter(([, info]) => info.bytesInOutput > 0)
    .map(([input]) => input);
  if (inputs.some((input) => input.includes('node_modules/ajv/'))) {
    throw new Error('the client bundle pulled in ajv: the SDK must import only the protocol index, never its schemas');
  }
  const text = write ? undefined : result.outputFiles.find((f) => f.path.endsWith(file))?.text;
  return { path, bytes: output.bytes, inputs, text };
}

export async function buildBrowser({ minify = true } = {}) {
  await mkdir(outdir, { recursive: true });
  const iife = await bundleClient({ format: 'iife', minify });
  const esm = await bundleClient({ format: 'esm', minify });
  const demoDir = join(root, 'demo');
  for (const file of await readdir(demoDir)) await copyFile(join(demoDir, file), join(outdir, file));
  return { iife, esm };
}

/** Raw and gzipped size of a built file, as the build reports it. */
export async function sizeOf(path) {
  const bytes = await readFile(resolve(path));
  return { bytes: bytes.length, gzipBytes: gzipSync(bytes).length };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { iife, esm } = await buildBrowser();
  const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
  for (const [name, built] of [['IIFE (window.MessagingServer)', iife], ['ES module', esm]]) {
    const { bytes, gzipBytes } = await sizeOf(built.path);
    console.log(`client bundle, ${name}: ${built.path} ${kib(bytes)} minified, ${kib(gzipBytes)} gzipped`);
  }
  console.log(`demo page copied to ${outdir}`);
}
