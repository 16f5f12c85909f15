// Bundles the SDK, the WebRTC helper and sockjs-client into one browser script, and puts the demo page beside it,
// so that dist/browser/ alone is the gateway's public directory.
import { build } from 'esbuild';
import { copyFile, mkdir, readdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'browser');
const protocolSrc = resolve(root, '..', 'protocol', 'src');

// The client uses only the code tables and types of @messaging-server/protocol. Declaring its modules free of side
// effects lets esbuild drop the ajv schemas (and ajv itself, ~120 kB) that the package index also exports.
const protocolWithoutSideEffects = {
  name: 'protocol-side-effect-free',
  setup(pluginBuild) {
    pluginBuild.onResolve({ filter: /^\.\/.*\.js$|^@messaging-server\/protocol$/ }, async (args) => {
      if (args.pluginData?.skip) return undefined;
      const result = await pluginBuild.resolve(args.path, {
        kind: args.kind,
        resolveDir: args.resolveDir,
        importer: args.importer,
        pluginData: { skip: true },
      });
      if (result.errors.length > 0 || !result.path.startsWith(protocolSrc)) return undefined;
      return { ...result, sideEffects: false };
    });
  },
};

export async function buildBrowser({ minify = true } = {}) {
  await mkdir(outdir, { recursive: true });
  const result = await build({
    entryPoints: [join(root, 'src', 'browser.ts')],
    outfile: join(outdir, 'messaging-client.js'),
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: ['es2022'],
    conditions: ['source'],
    define: { global: 'globalThis', 'process.env.NODE_ENV': '"production"' },
    minify,
    sourcemap: true,
    metafile: true,
    legalComments: 'linked',
    logLevel: 'warning',
    plugins: [protocolWithoutSideEffects],
  });
  const [bundlePath, bundle] = Object.entries(result.metafile.outputs).find(([path]) => path.endsWith('.js'));
  const included = Object.entries(bundle.inputs).filter(([, info]) => info.bytesInOutput > 0);
  if (included.some(([input]) => input.includes('node_modules/ajv/'))) {
    throw new Error('browser bundle pulled in ajv; the client must import only codes and types from protocol');
  }
  const demoDir = join(root, 'demo');
  for (const file of await readdir(demoDir)) await copyFile(join(demoDir, file), join(outdir, file));
  return { path: bundlePath, bytes: bundle.bytes };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { path, bytes } = await buildBrowser();
  console.log(`browser bundle: ${path} (${Math.round(bytes / 1024)} KiB), demo page beside it`);
}
