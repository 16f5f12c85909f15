// Rendering k8s/ offline with `kubectl kustomize`, for the manifest tests.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAll } from 'js-yaml';

export const K8S = fileURLToPath(new URL('../../k8s', import.meta.url));

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** k8s/base and every overlay with a kustomization. */
export function kustomizations(): string[] {
  const dirs = [path.join(K8S, 'base')];
  const overlays = path.join(K8S, 'overlays');
  for (const name of existsSync(overlays) ? readdirSync(overlays).sort() : []) dirs.push(path.join(overlays, name));
  return dirs.filter((dir) => existsSync(path.join(dir, 'kustomization.yaml')));
}

export function render(dir: string): K8sObject[] {
  const yaml = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return loadAll(yaml).filter((doc): doc is K8sObject => doc !== null && typeof doc === 'object');
}

/**
 * Renders an overlay that needs site inputs (`<name>.env`, git-ignored, made from `<name>.env.example`) from a copy
 * of k8s/ where `inputs` replaces those files (undefined: the file is left out). Default: the examples as shipped.
 */
export function renderWithInputs(dir: string, inputs?: Record<string, string | undefined>): K8sObject[] {
  const copy = mkdtempSync(path.join(tmpdir(), 'msg-k8s-'));
  try {
    cpSync(K8S, copy, { recursive: true, filter: (source) => !/\/(site|auth)\.env$/.test(source) });
    const target = path.join(copy, path.relative(K8S, dir));
    for (const example of readdirSync(dir).filter((f) => f.endsWith('.env.example'))) {
      const name = example.slice(0, -'.example'.length);
      const text = inputs ? inputs[name] : readFileSync(path.join(dir, example), 'utf8');
      if (text !== undefined) writeFileSync(path.join(target, name), text);
    }
    return render(target);
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}

export const needsInputs = (dir: string): boolean => readdirSync(dir).some((f) => f.endsWith('.env.example'));

/** Renders any kustomization in k8s/, with the shipped examples as its site inputs when it needs some. */
export const renderAsShipped = (dir: string): K8sObject[] => (needsInputs(dir) ? renderWithInputs(dir) : render(dir));
