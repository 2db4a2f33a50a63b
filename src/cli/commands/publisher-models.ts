// `tunekit publisher-models register DIR --name N [--publisher P]`: make a Hugging Face model directory
// a publisher model (a base model to serve and tune), served as
// projects/{p}/locations/{l}/publishers/{P}/models/{N}; `publisher-models list`. Administered directly on
// a data directory (and the deployment's --database and --storage), like `tunekit iam`. With object
// storage (--storage gs://) the model's files are stored there (platform/base-models.ts), so no machine
// needs DIR afterwards. (Tuned models in the registry are `tunekit models`.)

import type { Command } from 'commander';
import { registerPublisherModel } from '../../api/catalog.js';
import { DbRegistrationStore } from '../../api/db-store.js';
import { openRegistrationStore, resolveDataDir } from '../../api/stores.js';
import { storageConfig } from '../../platform/blob-store.js';
import { Platform } from '../../platform/platform.js';
import { printJson, shortTime, table } from '../client-output.js';
import { addStorageOptions, type StorageCliOptions } from '../options.js';

export function registerPublisherModelsCommands(program: Command): void {
  const models = program.command('publisher-models').description('base models `tunekit serve` serves and tunes, in a data directory');
  addStorageOptions(
    models
      .command('register')
      .description('register a Hugging Face model directory as a publisher model')
      .argument('<dir>', 'model directory (config.json, safetensors, tokenizer)')
      .requiredOption('--name <name>', 'model name, e.g. gemma3-tiny')
      .option('--publisher <publisher>', 'publisher (google, meta, qwen, ...)', 'google')
      .option('--data-dir <dir>', 'tunekit data directory (default $TUNEKIT_DATA_DIR or ~/.tunekit)')
      .option('--database <url>', 'the deployment\'s PostgreSQL database, as given to serve (default the data directory\'s SQLite file)'),
    'the deployment\'s storage, as given to serve: a directory (default the data directory; the model is registered by its path) or gs://BUCKET[/PREFIX] (its files are stored there)',
  ).action(async (dir: string, o: StorageCliOptions & { name: string; publisher: string; dataDir?: string; database?: string }) => {
    const dataDir = resolveDataDir(o.dataDir);
    const storage = storageConfig(o, dataDir);
    const platform = await Platform.open({
      dataDir, ...(o.database !== undefined ? { database: o.database } : {}),
      ...(storage.kind !== 'local' || storage.dir !== dataDir ? { storage } : {}),
    });
    try {
      const r = await registerPublisherModel(new DbRegistrationStore(platform.db), dir, {
        name: o.name, publisher: o.publisher, files: platform.models,
      });
      process.stdout.write(`registered publishers/${r.publisher}/models/${r.name} (${r.dir})\n`);
    } finally {
      await platform.close();
    }
  });
  models
    .command('list')
    .description('list registered publisher models')
    .option('--data-dir <dir>', 'tunekit data directory (default $TUNEKIT_DATA_DIR or ~/.tunekit)')
    .option('--json', 'the registrations as a JSON array')
    .action(async (o: { dataDir?: string; json?: boolean }) => {
      const store = await openRegistrationStore(resolveDataDir(o.dataDir));
      try {
        const all = await store.list();
        if (o.json) return printJson(all);
        if (all.length === 0) return void process.stdout.write('no publisher models\n');
        process.stdout.write(table(['MODEL', 'DIRECTORY', 'REGISTERED'], all.map((r) => [`publishers/${r.publisher}/models/${r.name}`, r.dir, shortTime(r.createTime)])));
      } finally {
        await store.close();
      }
    });
}
