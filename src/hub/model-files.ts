// Which files of a model repo tunekit reads, and nothing else: config, tokenizer, chat template and
// safetensors weights (model.safetensors, or model.safetensors.index.json plus every shard it names).
// One list serves both the download plan and the check that a cached snapshot is complete, so the two
// cannot disagree. No .bin, ONNX or GGUF file is ever part of it.

import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { InvalidModelError } from '../errors.js';

export const REQUIRED_FILES = ['config.json', 'tokenizer.json', 'tokenizer_config.json'] as const;
export const OPTIONAL_FILES = ['generation_config.json', 'special_tokens_map.json', 'chat_template.jinja'] as const;
export const SINGLE_WEIGHTS = 'model.safetensors';
export const WEIGHTS_INDEX = 'model.safetensors.index.json';

/** The files to fetch before the shards; `index` is set when the shards come from a safetensors index. */
export interface DownloadPlan {
  files: string[];
  index?: string;
}

/** Plans the download from the repo's file list; `repo` names the repo in errors. */
export function planDownload(available: ReadonlySet<string>, repo: string): DownloadPlan {
  const missing: string[] = REQUIRED_FILES.filter((f) => !available.has(f));
  const weights = available.has(SINGLE_WEIGHTS) ? SINGLE_WEIGHTS : available.has(WEIGHTS_INDEX) ? WEIGHTS_INDEX : undefined;
  if (weights === undefined) missing.push(`${SINGLE_WEIGHTS} (or ${WEIGHTS_INDEX})`);
  if (missing.length > 0) {
    const other = [...available].filter((f) => /\.(bin|pt|pth|gguf|onnx|h5|msgpack)$/.test(f));
    const hint = other.length > 0 ? `; it has ${other.slice(0, 3).join(', ')}, which tunekit does not read (convert to safetensors)` : '';
    throw new InvalidModelError(
      `${repo} has no ${missing.join(', ')}; tunekit needs ${REQUIRED_FILES.join(', ')} and safetensors weights${hint}`,
    );
  }
  const files = [...REQUIRED_FILES, ...OPTIONAL_FILES.filter((f) => available.has(f)), weights!];
  return weights === WEIGHTS_INDEX ? { files, index: WEIGHTS_INDEX } : { files };
}

/** The shard files a safetensors index names in its weight_map, each once, in first-seen order. */
export function shardNames(indexJson: string, source: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(indexJson);
  } catch (err) {
    throw new InvalidModelError(`${source}: not valid JSON (${(err as Error).message})`);
  }
  const weightMap = (parsed as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new InvalidModelError(`${source}: weight_map must be an object mapping tensor names to shard files`);
  }
  const shards = new Set<string>();
  for (const [tensor, file] of Object.entries(weightMap)) {
    if (typeof file !== 'string' || !isSafeRelativePath(file)) {
      throw new InvalidModelError(`${source}: weight_map["${tensor}"] = ${JSON.stringify(file)} is not a file in the repo`);
    }
    shards.add(file);
  }
  if (shards.size === 0) throw new InvalidModelError(`${source}: weight_map is empty`);
  return [...shards];
}

/** A repo path that stays inside the directory it is joined onto (no "..", not absolute, no backslash). */
export function isSafeRelativePath(p: string): boolean {
  return p.length > 0 && !p.startsWith('/') && !p.includes('\\') && !/^[a-zA-Z]:/.test(p) && !p.split('/').includes('..');
}

/** True when `dir` holds every file the plan requires (following symlinks), shards included. */
export async function isCompleteModelDir(dir: string): Promise<boolean> {
  for (const f of REQUIRED_FILES) if (!(await isFile(path.join(dir, f)))) return false;
  if (await isFile(path.join(dir, SINGLE_WEIGHTS))) return true;
  const indexFile = path.join(dir, WEIGHTS_INDEX);
  if (!(await isFile(indexFile))) return false;
  let shards: string[];
  try {
    shards = shardNames(await fs.readFile(indexFile, 'utf8'), indexFile);
  } catch {
    return false;
  }
  for (const s of shards) if (!(await isFile(path.join(dir, s)))) return false;
  return true;
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await fs.stat(p)).isFile();
  } catch {
    return false;
  }
}
