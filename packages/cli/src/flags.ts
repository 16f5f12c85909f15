import { CONFIG_FIELDS } from '@messaging-server/core';

/**
 * Every configuration variable is also a flag: `--etcd-endpoints http://…` sets `MSG_ETCD_ENDPOINTS`.
 * Flags win over the environment. This is the only module that turns argv into configuration.
 */
export function flagNameOf(envName: string): string {
  return `--${envName.replace(/^MSG_/, '').toLowerCase().replaceAll('_', '-')}`;
}

const ENV_BY_FLAG = new Map(CONFIG_FIELDS.map((f) => [flagNameOf(f.env), f.env]));
/** Boolean settings read like switches: `--production` alone means `MSG_PRODUCTION=true`. */
const SWITCHES = new Set(CONFIG_FIELDS.filter((f) => f.type === 'boolean').map((f) => flagNameOf(f.env)));

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface ParsedArgs {
  /** Positional arguments (command, its operands). */
  positionals: string[];
  /** `MSG_*` values given as flags. */
  configFlags: Record<string, string>;
  /** Flags that are not configuration (`--json`, `--help`, …), as given. */
  options: Record<string, string | true>;
}

/**
 * Accepts `--name value`, `--name=value` and boolean `--name`. `booleanOptions` never take a value.
 * Unknown flags are an error, so a typo never silently falls back to a default.
 */
export function parseArgs(argv: readonly string[], knownOptions: Record<string, 'boolean' | 'string'>): ParsedArgs {
  const parsed: ParsedArgs = { positionals: [], configFlags: {}, options: {} };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (!arg.startsWith('--')) {
      parsed.positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    const inlineValue = eq === -1 ? undefined : arg.slice(eq + 1);
    const envName = ENV_BY_FLAG.get(name);
    const optionKind = knownOptions[name.slice(2)];
    if (envName === undefined && optionKind === undefined) throw new UsageError(`unknown flag ${name}`);
    if (optionKind === 'boolean') {
      parsed.options[name.slice(2)] = true;
      continue;
    }
    if (envName !== undefined && SWITCHES.has(name) && inlineValue === undefined) {
      parsed.configFlags[envName] = 'true';
      continue;
    }
    const value = inlineValue ?? argv[++i];
    if (value === undefined) throw new UsageError(`flag ${name} needs a value`);
    if (envName !== undefined) parsed.configFlags[envName] = value;
    else parsed.options[name.slice(2)] = value;
  }
  return parsed;
}
