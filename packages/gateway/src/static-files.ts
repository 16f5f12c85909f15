import { readFile, stat } from 'node:fs/promises';
import { extname, resolve, sep } from 'node:path';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
};

export function contentTypeOf(path: string): string {
  return CONTENT_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream';
}

/**
 * Resolves a URL path below `root`, or undefined when it would leave it (`..`, encoded separators, NUL) or is
 * not a plain file name path.
 */
export function resolveInside(root: string, urlPath: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return undefined;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return undefined;
  const segments = decoded.split('/').filter((segment) => segment.length > 0);
  if (segments.length === 0 || segments.some((segment) => segment === '..' || segment === '.' || segment.startsWith('.'))) {
    return undefined;
  }
  const base = resolve(root);
  const target = resolve(base, ...segments);
  return target.startsWith(base + sep) ? target : undefined;
}

/** A regular file's content, or undefined when it does not exist or is not a file. */
export async function readFileIfExists(path: string): Promise<Buffer | undefined> {
  try {
    const info = await stat(path);
    if (!info.isFile()) return undefined;
    return await readFile(path);
  } catch {
    return undefined;
  }
}

/** Served at GET / when the public directory has no index.html. */
export function fallbackDemoPage(version: string): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>messaging-server</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body>
<h1>messaging-server gateway</h1>
<p>Version ${escapeHtml(version)}. <code>POST /connect</code> with <code>{"userId":"alice"}</code> to get a session.</p>
<form id="connect"><label>userId <input name="userId" value="alice" pattern="[A-Za-z0-9._~@-]{1,128}" required></label>
<button>connect</button></form>
<pre id="out"></pre>
<script>
document.getElementById('connect').addEventListener('submit', async (event) => {
  event.preventDefault();
  const userId = new FormData(event.target).get('userId');
  const response = await fetch('connect', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId }) });
  const body = await response.json();
  if (body.listeningKey) body.listeningKey = '(hidden)';
  document.getElementById('out').textContent = response.status + ' ' + JSON.stringify(body, null, 2);
});
</script>
</body>
</html>
`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${String(c.charCodeAt(0))};`);
}
