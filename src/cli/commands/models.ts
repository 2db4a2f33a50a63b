// `tunekit models list | get | delete`: tuned models in a tunekit server's model registry (each tuning
// job registers one: projects/P/locations/L/models/ID, with versions and epoch checkpoints). `get`
// shows a model at a version (ID@VERSION, default the newest) and lists all its versions. (Base models
// a server serves are `tunekit publisher-models`.)

import type { Command } from 'commander';
import type { ClientFlags } from '../../client/config.js';
import type { Model } from '../../client/types.js';
import { clientOf, clientOptions, details, idOf, printJson, shortTime, table } from '../client-output.js';

type ReadFlags = ClientFlags & { json?: boolean };

const baseOf = (m: Model): string => m.baseModelSource?.modelGardenSource?.publicModelName ?? '';
const labelsOf = (l: Record<string, string> | undefined): string | undefined => (l ? Object.entries(l).map(([k, v]) => `${k}=${v}`).join(',') : undefined);

export function registerModelsCommands(program: Command): void {
  const models = program.command('models').description('tuned models in a tunekit server\'s registry (see `tunekit config`)');

  clientOptions(models.command('list').description('list the registry\'s models (newest version of each)'))
    .option('--filter <expr>', 'server-side filter: display_name="NAME", labels.KEY="VALUE", joined by AND')
    .option('--json', 'the API\'s ListModelsResponse (all pages)')
    .action(async (o: ReadFlags & { filter?: string }) => {
      const { items } = await clientOf(o).listModels(o.filter);
      if (o.json) return printJson(items.length ? { models: items } : {});
      if (items.length === 0) return void process.stdout.write('no models\n');
      process.stdout.write(table(['MODEL', 'VERSION', 'DISPLAY NAME', 'BASE MODEL', 'DEPLOYED', 'CREATED'],
        items.map((m) => [idOf(m.name), m.versionId ?? '', m.displayName ?? '', baseOf(m), String(m.deployedModels?.length ?? 0), shortTime(m.createTime)])));
    });

  clientOptions(models.command('get').description('show a model (at a version) and its versions').argument('<model>', 'ID, ID@VERSION or projects/P/locations/L/models/ID'))
    .option('--json', 'the API\'s Model')
    .action(async (id: string, o: ReadFlags) => {
      const client = clientOf(o);
      const m = await client.getModel(id);
      if (o.json) return printJson(m);
      let out = details([
        ['name', m.name], ['display name', m.displayName], ['version', m.versionId], ['aliases', m.versionAliases?.join(',')],
        ['base model', baseOf(m)], ['artifact', m.artifactUri], ['labels', labelsOf(m.labels)],
        ['deployed on', m.deployedModels?.map((d) => `${d.endpoint} (${d.deployedModelId})`).join(', ')],
        ['created', shortTime(m.createTime)], ['updated', shortTime(m.updateTime)],
      ]);
      if (m.checkpoints?.length) out += `\n${table(['CHECKPOINT', 'EPOCH', 'STEP'], m.checkpoints.map((c) => [c.checkpointId, c.epoch ?? '', c.step ?? '']))}`;
      const versions = await client.listModelVersions(id.replace(/@[^/]*$/, ''));
      out += `\n${table(['VERSION', 'ALIASES', 'CREATED', 'DEPLOYED'], versions.map((v) => [v.versionId ?? '', v.versionAliases?.join(',') ?? '', shortTime(v.versionCreateTime), String(v.deployedModels?.length ?? 0)]))}`;
      process.stdout.write(out);
    });

  clientOptions(models.command('delete').description('delete a model and all its versions (refused while one is deployed)').argument('<model>', 'ID or full name'))
    .action(async (id: string, o: ClientFlags) => {
      const client = clientOf(o);
      await client.deleteModel(id);
      process.stdout.write(`deleted ${client.name('models', id)}\n`);
    });
}
