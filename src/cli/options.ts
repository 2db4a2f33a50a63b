// Parsers for numeric CLI options: a bad value is a one-line error naming the option.

import { InvalidArgumentError, type Command } from 'commander';

export function intOption(name: string, min = 0) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}, got "${value}"`);
    return n;
  };
}

/** A byte count: plain, or with a K, M or G suffix (powers of 1024; "MiB" and "MB" read the same). */
export function sizeOption(name: string) {
  return (value: string): number => {
    const m = /^(\d+(?:\.\d+)?)\s*([KMG]?)(?:i?B)?$/i.exec(value.trim());
    const n = m ? Math.round(Number(m[1]) * 1024 ** ' KMG'.indexOf((m[2] || ' ').toUpperCase())) : NaN;
    if (!(n >= 1)) throw new InvalidArgumentError(`${name} must be a size like 512M, 2G or a number of bytes, got "${value}"`);
    return n;
  };
}

export function floatOption(name: string, min: number, max = Infinity) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a number in [${min}, ${max}], got "${value}"`);
    return n;
  };
}

export function choiceOption<T extends string>(name: string, choices: readonly T[]) {
  return (value: string): T => {
    if (!(choices as readonly string[]).includes(value)) throw new InvalidArgumentError(`${name} must be one of ${choices.join(', ')}, got "${value}"`);
    return value as T;
  };
}

/** The storage flags of `tunekit serve` and `tunekit worker` (platform/blob-store.ts storageConfig reads them). */
export interface StorageCliOptions {
  storage?: string;
  storageEndpoint?: string;
  storageKeyFile?: string;
  storageApiKeyFile?: string;
}

export function addStorageOptions(cmd: Command, storageHelp: string, required = false): Command {
  (required ? cmd.requiredOption.bind(cmd) : cmd.option.bind(cmd))('--storage <dir|gs://BUCKET[/PREFIX]>', storageHelp);
  return cmd
    .option('--storage-endpoint <url>', 'with gs://: the Cloud Storage JSON API endpoint (default https://storage.googleapis.com; another tunekit serve\'s URL works)')
    .option('--storage-key-file <file>', 'with gs://: Google credentials JSON (a service account key); default Application Default Credentials')
    .option('--storage-api-key-file <file>', 'with gs://: a file holding an API key, sent as x-goog-api-key (a tunekit storage node\'s key)');
}
