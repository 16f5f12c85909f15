import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { BackendOperationHook } from './instrumented-backends.js';

/**
 * The metrics behind an instrumented backend (`instrumentRegistry`, `instrumentSessionStore`):
 * `msg_<backend>_operation_seconds{operation}` and `msg_<backend>_errors_total{operation,code}`, on the given
 * registry. Gateways and nodes both use it, so the two expose the same series under the same names.
 */
export function backendOperationMetrics(registry: Registry, backend: 'etcd' | 'memcached'): BackendOperationHook {
  const latency = new Histogram({
    name: `msg_${backend}_operation_seconds`,
    help: `Duration of ${backend} operations (failed ones included)`,
    labelNames: ['operation'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const errors = new Counter({
    name: `msg_${backend}_errors_total`,
    help: `${backend} operations that failed, by error code`,
    labelNames: ['operation', 'code'] as const,
    registers: [registry],
  });
  return (operation, seconds, error) => {
    if (seconds !== undefined) latency.observe({ operation }, seconds);
    if (error !== undefined) errors.inc({ operation, code: errorCode(error) });
  };
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'UNKNOWN';
}

/**
 * `msg_build_info{version,role,nodejs} 1`: which build runs where, so dashboards can tell a rollout apart from a
 * regression (`* on(pod) group_left(version) msg_build_info`).
 */
export function registerBuildInfo(registry: Registry, role: 'gateway' | 'node', version: string): void {
  const info = new Gauge({
    name: 'msg_build_info',
    help: 'Always 1; the labels name the running build',
    labelNames: ['version', 'role', 'nodejs'] as const,
    registers: [registry],
  });
  info.set({ version, role, nodejs: process.version }, 1);
}
