// What the client commands (jobs, models, endpoints) share: the connection flags, `--json` output
// (exactly the API's JSON) and aligned tables otherwise.

import type { Command } from 'commander';
import { ApiClient } from '../client/api.js';
import { PROPERTY_ENV, resolveSettings, type ClientFlags } from '../client/config.js';

/** --api, --key, --project, --location on a client command. */
export function clientOptions(cmd: Command): Command {
  return cmd
    .option('--api <url>', `tunekit server (default: $${PROPERTY_ENV.api}, \`tunekit config\`, http://127.0.0.1:8080)`)
    .option('--key <key>', `API key (default: $${PROPERTY_ENV.key}, \`tunekit config\`)`)
    .option('--project <project>', `project (default: $${PROPERTY_ENV.project}, \`tunekit config\`)`)
    .option('--location <location>', `location (default: $${PROPERTY_ENV.location}, \`tunekit config\`, us-central1)`);
}

export function clientOf(o: ClientFlags): ApiClient {
  return new ApiClient(resolveSettings({ api: o.api, key: o.key, project: o.project, location: o.location }));
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Columns padded to their widest cell, two spaces apart; the last column is not padded. */
export function table(headers: string[], rows: string[][]): string {
  const all = [headers, ...rows];
  const widths = headers.map((_, i) => Math.max(...all.map((r) => [...(r[i] ?? '')].length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat(widths[i]! - [...c].length))).join('  ').trimEnd()).join('\n') + '\n';
}

/** "key: value" lines, keys aligned; empty values left out. */
export function details(pairs: [string, string | undefined][]): string {
  const shown = pairs.filter((p): p is [string, string] => p[1] !== undefined && p[1] !== '');
  const width = Math.max(...shown.map(([k]) => k.length)) + 1;
  return shown.map(([k, v]) => `${`${k}:`.padEnd(width)} ${v}`).join('\n') + '\n';
}

/** The last path segment of a resource name (its ID). */
export const idOf = (name: string | undefined): string => (name ? name.slice(name.lastIndexOf('/') + 1) : '');

/** An RFC 3339 time as "YYYY-MM-DD HH:MM:SS" (UTC). */
export const shortTime = (t: string | undefined): string => (t ? t.replace('T', ' ').replace(/(\.\d+)?Z$/, '') : '');
