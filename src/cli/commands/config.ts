// `tunekit config set | get | unset | list`: the client's properties (project, location, api, key), as
// `gcloud config` keeps them, in $TUNEKIT_CONFIG_DIR/properties (src/client/config.ts). Flags and
// environment variables override the file; `get` and `list` say where each value comes from.

import type { Command } from 'commander';
import {
  CLIENT_PROPERTIES, PROPERTY_ENV, propertiesFile, propertyName, readProperties, resolveProperty, setProperty, unsetProperty,
} from '../../client/config.js';
import { printJson, table } from '../client-output.js';

/** An API key is shown by its id only (tk1.ID.SECRET), as `tunekit iam keys list` does. */
const shown = (name: string, value: string | undefined): string =>
  value === undefined ? '(unset)' : name === 'key' ? value.replace(/^(tk1\.[0-9a-f]+)\..*$/, '$1.…') : value;

export function registerConfigCommands(program: Command): void {
  const config = program.command('config').description(`client properties (${CLIENT_PROPERTIES.join(', ')}) stored in ${propertiesFile()}`);

  config
    .command('set')
    .description('store a property')
    .argument('<property>', CLIENT_PROPERTIES.join(' | '))
    .argument('<value>', 'its value')
    .action((name: string, value: string) => {
      const p = propertyName(name);
      const stored = setProperty(p, value);
      process.stdout.write(`set ${p} = ${shown(p, stored)} in ${propertiesFile()}\n`);
      if (process.env[PROPERTY_ENV[p]]) process.stderr.write(`tunekit: note: $${PROPERTY_ENV[p]} is set and overrides it\n`);
    });

  config
    .command('unset')
    .description('remove a stored property')
    .argument('<property>', CLIENT_PROPERTIES.join(' | '))
    .action((name: string) => {
      const p = propertyName(name);
      unsetProperty(p);
      process.stdout.write(`unset ${p}\n`);
    });

  config
    .command('get')
    .description('the value in effect (flag > environment > file > default); the key in full')
    .argument('<property>', CLIENT_PROPERTIES.join(' | '))
    .action((name: string) => {
      const r = resolveProperty(propertyName(name), undefined);
      if (r.value === undefined) {
        process.stderr.write(`tunekit: ${name} is not set\n`);
        process.exitCode = 1;
        return;
      }
      process.stdout.write(`${r.value}\n`);
    });

  config
    .command('list')
    .description('every property in effect and where it comes from (the key by its id only)')
    .option('--json', 'the properties in effect as a JSON object, with their sources')
    .action((o: { json?: boolean }) => {
      const props = readProperties();
      const rows = CLIENT_PROPERTIES.map((p) => ({ property: p, ...resolveProperty(p, undefined, process.env, props) }));
      if (o.json) return printJson(Object.fromEntries(rows.map((r) => [r.property, r.value === undefined ? null : { value: shown(r.property, r.value), source: r.source }])));
      process.stdout.write(table(['PROPERTY', 'VALUE', 'SOURCE'], rows.map((r) => [
        r.property, shown(r.property, r.value), r.source === 'env' ? `$${PROPERTY_ENV[r.property]}` : r.source === 'config' ? propertiesFile() : r.source ?? '',
      ])));
    });
}
