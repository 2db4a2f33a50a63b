// `tunekit storage mb | cp | ls | rm`: the object store behind gs:// URIs, in a data directory, as
// gsutil does for Cloud Storage. cp copies local -> gs://, gs:// -> local and gs:// -> gs://; a
// destination ending in '/' (or a bucket, or a local directory) takes the source's base name. ls prints
// one URI a line (as gsutil), an aligned table with -l, or the store's records with --json.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { InvalidRequestError } from '../../errors.js';
import { Platform } from '../../platform/platform.js';
import { defaultDataDir } from '../../platform/db.js';
import { parseGsUri } from '../../platform/gcs-names.js';
import type { ObjectInfo } from '../../platform/storage.js';
import { printJson, table } from '../client-output.js';
import { storageConfig } from '../../platform/blob-store.js';
import { addStorageOptions, type StorageCliOptions } from '../options.js';

export interface DataDirOption extends StorageCliOptions {
  dataDir: string;
}

/** --data-dir, and the deployment's storage flags (serve's: the object store's bytes may be elsewhere). */
export function dataDirOption(cmd: Command): Command {
  return addStorageOptions(
    cmd.option('--data-dir <dir>', 'platform data directory (default: $TUNEKIT_DATA_DIR or ~/.tunekit)', defaultDataDir()),
    'where the deployment keeps its bytes, as given to serve: a directory (default the data directory) or gs://BUCKET[/PREFIX]',
  );
}

/** Runs `fn` with the platform of `o.dataDir` (and its storage), closing it afterwards. */
export async function withPlatform<T>(o: DataDirOption, fn: (p: Platform) => T | Promise<T>): Promise<T> {
  const storage = storageConfig(o, path.resolve(o.dataDir));
  const p = await Platform.open({ dataDir: o.dataDir, ...(storage.kind === 'local' && storage.dir === path.resolve(o.dataDir) ? {} : { storage }) });
  try {
    return await fn(p);
  } finally {
    await p.close();
  }
}

export function registerStorageCommands(program: Command): void {
  const storage = program.command('storage').description('buckets and objects behind gs:// URIs');

  dataDirOption(
    storage
      .command('mb')
      .description('make a bucket in a location')
      .argument('<gs://bucket>', 'bucket URI')
      .requiredOption('--location <location>', 'where its data lives (e.g. us-central1, europe-west4)')
      .option('--project <project>', 'owning project (its role bindings govern access)', 'default'),
  ).action(async (uri: string, o: DataDirOption & { location: string; project: string }) => {
    const { bucket } = parseGsUri(uri, { allowBucketOnly: true });
    await withPlatform(o, async (p) => {
      const b = await p.storage.createBucket(bucket, { location: o.location, project: o.project });
      process.stdout.write(`created gs://${b.name} in ${b.location} (project ${b.project})\n`);
    });
  });

  dataDirOption(
    storage
      .command('cp')
      .description('copy a file: local -> gs://, gs:// -> local, gs:// -> gs://')
      .argument('<src>', 'local path or gs://bucket/object')
      .argument('<dst>', 'local path or gs://bucket/object (ending in / to keep the source name)'),
  ).action(async (src: string, dst: string, o: DataDirOption) => {
    await withPlatform(o, async (p) => {
      const srcIsGs = src.startsWith('gs://');
      const baseName = srcIsGs ? path.posix.basename(parseGsUri(src).object) : path.basename(src);
      if (dst.startsWith('gs://')) {
        const d = parseGsUri(dst, { allowBucketOnly: true });
        const object = d.object === '' || d.object.endsWith('/') ? `${d.object}${baseName}` : d.object;
        const info = srcIsGs
          ? await p.storage.putObject(d.bucket, object, copySource(p, src))
          : await p.storage.putObjectFromFile(d.bucket, object, src);
        process.stdout.write(`copied ${src} to gs://${info.bucket}/${info.name} (${info.size} bytes)\n`);
      } else {
        if (!srcIsGs) throw new InvalidRequestError(`one of source and destination must be a gs:// URI, got ${JSON.stringify(src)} and ${JSON.stringify(dst)}`);
        const s = parseGsUri(src);
        const target = fs.existsSync(dst) && fs.statSync(dst).isDirectory() ? path.join(dst, baseName) : dst;
        const info = await p.storage.copyToFile(s.bucket, s.object, target);
        process.stdout.write(`copied ${src} to ${target} (${info.size} bytes)\n`);
      }
    });
  });

  dataDirOption(
    storage
      .command('ls')
      .description('list buckets, or the objects under gs://bucket[/prefix] (one level, as gsutil)')
      .argument('[gs://bucket[/prefix]]', 'what to list; nothing lists the buckets')
      .option('-l, --long', 'a table: location, project and creation time of buckets; size, update time and generation of objects')
      .option('--json', 'the buckets as a JSON array, or {prefixes, objects} under a bucket (all pages)'),
  ).action(async (uri: string | undefined, o: DataDirOption & { long?: boolean; json?: boolean }) => {
    await withPlatform(o, async (p) => {
      if (uri === undefined) {
        const buckets = await p.storage.listBuckets();
        if (o.json) return printJson(buckets);
        if (!o.long || buckets.length === 0) return void process.stdout.write(buckets.map((b) => `gs://${b.name}/\n`).join(''));
        process.stdout.write(table(['BUCKET', 'LOCATION', 'PROJECT', 'CREATED'], buckets.map((b) => [`gs://${b.name}/`, b.location, b.project, b.createTime])));
        return;
      }
      const { bucket, object: prefix } = parseGsUri(uri, { allowBucketOnly: true });
      const prefixes: string[] = [];
      const objects: ObjectInfo[] = [];
      let pageToken: string | undefined;
      do {
        const page = await p.storage.listObjects(bucket, { prefix, delimiter: '/', pageToken });
        prefixes.push(...page.prefixes);
        objects.push(...page.objects);
        pageToken = page.nextPageToken;
      } while (pageToken);
      if (o.json) return printJson({ prefixes, objects });
      const uris = [...prefixes.map((x) => `gs://${bucket}/${x}`), ...objects.map((x) => `gs://${bucket}/${x.name}`)];
      if (!o.long) return void process.stdout.write(uris.map((u) => `${u}\n`).join(''));
      if (uris.length === 0) return;
      process.stdout.write(table(['SIZE', 'UPDATED', 'GENERATION', 'URI'], [
        ...prefixes.map((x) => ['', '', '', `gs://${bucket}/${x}`]),
        ...objects.map((x) => [String(x.size), x.updateTime, x.generation, `gs://${bucket}/${x.name}`]),
      ]));
    });
  });

  dataDirOption(
    storage
      .command('rm')
      .description('delete an object')
      .argument('<gs://bucket/object>', 'object URI'),
  ).action(async (uri: string, o: DataDirOption) => {
    const { bucket, object } = parseGsUri(uri);
    await withPlatform(o, async (p) => {
      await p.storage.deleteObject(bucket, object);
      process.stdout.write(`removed ${uri}\n`);
    });
  });
}

async function* copySource(p: Platform, src: string): AsyncIterable<Buffer> {
  const s = parseGsUri(src);
  for await (const chunk of await p.storage.createReadStream(s.bucket, s.object)) yield chunk as Buffer;
}
