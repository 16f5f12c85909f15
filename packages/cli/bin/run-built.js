// The commands' entry files live here, committed, because npm links a package's `bin` only if its target exists
// when `npm ci` runs: on a fresh clone that is before the build, so a bin pointing into dist/ would never be linked
// and `npx msgctl` would look for a package of that name in the registry instead.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The built command that the bin of this name runs (what the container image starts directly). */
export function builtEntry(name) {
  return fileURLToPath(new URL(`../dist/bin/${name}.js`, import.meta.url));
}

/** Runs the built command, or says how to build it. */
export async function runBuilt(name) {
  const entry = builtEntry(name);
  if (!existsSync(entry)) {
    process.stderr.write(`${name}: not built yet (${entry} is missing); run \`make build\` at the repository root\n`);
    process.exit(1);
  }
  await import(pathToFileURL(entry).href);
}
