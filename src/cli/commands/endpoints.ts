// `tunekit endpoints list | get | deploy | undeploy`: endpoints on a tunekit server and the models
// deployed on them, with their traffic split (`--traffic-split ID=PERCENT,...`; in deploy, ID 0 is the
// model being deployed, as in Vertex's DeployModelRequest).

import { InvalidArgumentError, type Command } from 'commander';
import type { ClientFlags } from '../../client/config.js';
import type { Endpoint } from '../../client/types.js';
import { clientOf, clientOptions, details, idOf, printJson, shortTime, table } from '../client-output.js';

type ReadFlags = ClientFlags & { json?: boolean };

function trafficSplitOption(value: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of value.split(',')) {
    const m = /^\s*([A-Za-z0-9_-]+)\s*=\s*(\d{1,3})\s*$/.exec(part);
    if (!m || Number(m[2]) > 100) throw new InvalidArgumentError(`--traffic-split must be ID=PERCENT[,ID=PERCENT...] with percentages 0-100, got "${value}"`);
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

const modelOf = (d: NonNullable<Endpoint['deployedModels']>[number]): string =>
  `${idOf(d.model)}@${d.modelVersionId ?? '?'}${d.checkpointId !== undefined ? ` checkpoint ${d.checkpointId}` : ''}`;

export function registerEndpointsCommands(program: Command): void {
  const endpoints = program.command('endpoints').description('endpoints on a tunekit server and their deployed models (see `tunekit config`)');

  clientOptions(endpoints.command('list').description('list endpoints'))
    .option('--json', 'the API\'s ListEndpointsResponse (all pages)')
    .action(async (o: ReadFlags) => {
      const { items } = await clientOf(o).listEndpoints();
      if (o.json) return printJson(items.length ? { endpoints: items } : {});
      if (items.length === 0) return void process.stdout.write('no endpoints\n');
      process.stdout.write(table(['ENDPOINT', 'DISPLAY NAME', 'DEPLOYED MODELS (TRAFFIC)', 'CREATED'], items.map((e) => [
        idOf(e.name), e.displayName ?? '',
        (e.deployedModels ?? []).map((d) => `${modelOf(d)} (${e.trafficSplit?.[d.id] ?? 0}%)`).join(', ') || '-',
        shortTime(e.createTime),
      ])));
    });

  clientOptions(endpoints.command('get').description('show an endpoint and its deployed models').argument('<endpoint>', 'ID or projects/P/locations/L/endpoints/ID'))
    .option('--json', 'the API\'s Endpoint')
    .action(async (id: string, o: ReadFlags) => {
      const e = await clientOf(o).getEndpoint(id);
      if (o.json) return printJson(e);
      let out = details([
        ['name', e.name], ['display name', e.displayName],
        ['labels', e.labels ? Object.entries(e.labels).map(([k, v]) => `${k}=${v}`).join(',') : undefined],
        ['created', shortTime(e.createTime)], ['updated', shortTime(e.updateTime)],
      ]);
      const dms = e.deployedModels ?? [];
      out += dms.length
        ? `\n${table(['DEPLOYED MODEL', 'MODEL', 'VERSION', 'CHECKPOINT', 'TRAFFIC'], dms.map((d) => [d.id, d.model, d.modelVersionId ?? '', d.checkpointId ?? '', `${e.trafficSplit?.[d.id] ?? 0}%`]))}`
        : '\nno models deployed\n';
      process.stdout.write(out);
    });

  clientOptions(endpoints.command('deploy').description('deploy a registry model (a version, or one of its checkpoints) on an endpoint').argument('<endpoint>', 'ID or full name'))
    .requiredOption('--model <model>', 'ID, ID@VERSION or projects/P/locations/L/models/ID[@VERSION]')
    .option('--checkpoint <id>', 'serve this checkpoint of the version (see `tunekit models get`)')
    .option('--display-name <name>', 'display name of the deployed model')
    .option('--traffic-split <split>', 'the endpoint\'s new split, ID=PERCENT,... summing to 100 (0: the model being deployed)', trafficSplitOption)
    .action(async (id: string, o: ClientFlags & { model: string; checkpoint?: string; displayName?: string; trafficSplit?: Record<string, number> }) => {
      const client = clientOf(o);
      const model = client.name('models', o.model);
      const op = await client.deployModel(id, {
        model, ...(o.checkpoint !== undefined ? { checkpointId: o.checkpoint } : {}), ...(o.displayName !== undefined ? { displayName: o.displayName } : {}),
      }, o.trafficSplit);
      const deployed = (op.response?.deployedModel as { id?: string } | undefined)?.id ?? '?';
      process.stdout.write(`deployed ${model}${o.checkpoint !== undefined ? ` checkpoint ${o.checkpoint}` : ''} on ${client.name('endpoints', id)} as deployed model ${deployed}\n`);
    });

  clientOptions(endpoints.command('undeploy').description('remove a deployed model from an endpoint')
    .argument('<endpoint>', 'ID or full name').argument('<deployed-model-id>', 'the deployed model\'s ID (see `tunekit endpoints get`)'))
    .option('--traffic-split <split>', 'the split after the removal, ID=PERCENT,... (needed when the model still has traffic)', trafficSplitOption)
    .action(async (id: string, deployedModelId: string, o: ClientFlags & { trafficSplit?: Record<string, number> }) => {
      const client = clientOf(o);
      await client.undeployModel(id, deployedModelId, o.trafficSplit);
      process.stdout.write(`undeployed ${deployedModelId} from ${client.name('endpoints', id)}\n`);
    });
}
