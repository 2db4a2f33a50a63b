// `tunekit iam`: service accounts, their API keys and role bindings, administered directly on a data
// directory (whoever can write it is the administrator). `keys create` prints the secret once, on
// stdout alone, so that `KEY=$(tunekit iam keys create SA)` works; the notice goes to stderr. The list
// commands print aligned tables, or with --json the store's records (a JSON array).

import type { Command } from 'commander';
import { dataDirOption, withPlatform, type DataDirOption } from './storage.js';
import { ROLES } from '../../platform/roles.js';
import { printJson, table } from '../client-output.js';

type ListFlags = DataDirOption & { json?: boolean };

export function registerIamCommands(program: Command): void {
  const iam = program.command('iam').description('service accounts, API keys and role bindings');

  const sa = iam.command('sa').description('service accounts');
  dataDirOption(
    sa
      .command('create')
      .description('create NAME@PROJECT.iam.gserviceaccount.com')
      .argument('<name>', '6-30 characters of a-z, 0-9 and -')
      .requiredOption('--project <project>', 'project of the account (created if new)')
      .option('--display-name <text>', 'a description'),
  ).action(async (name: string, o: DataDirOption & { project: string; displayName?: string }) => {
    await withPlatform(o, async (p) => {
      const acct = await p.iam.createServiceAccount(o.project, name, { displayName: o.displayName });
      process.stdout.write(`${acct.email}\n`);
    });
  });
  dataDirOption(
    sa.command('list').description('list the service accounts of a project').requiredOption('--project <project>', 'project')
      .option('--json', 'the service accounts as a JSON array'),
  ).action(async (o: ListFlags & { project: string }) => {
    await withPlatform(o, async (p) => {
      const accounts = await p.iam.listServiceAccounts(o.project);
      if (o.json) return printJson(accounts);
      if (accounts.length === 0) return void process.stdout.write(`no service accounts in project ${o.project}\n`);
      process.stdout.write(table(['EMAIL', 'CREATED', 'DISPLAY NAME'], accounts.map((a) => [a.email, a.createTime, a.displayName])));
    });
  });
  dataDirOption(
    sa.command('delete').description('delete a service account, its keys and its role bindings').argument('<email>', 'service account'),
  ).action(async (email: string, o: DataDirOption) => {
    await withPlatform(o, async (p) => {
      await p.iam.deleteServiceAccount(email);
      process.stdout.write(`deleted ${email}\n`);
    });
  });

  const keys = iam.command('keys').description('API keys of service accounts');
  dataDirOption(
    keys.command('create').description('create a key and print it (shown this once only)').argument('<email>', 'service account'),
  ).action(async (email: string, o: DataDirOption) => {
    await withPlatform(o, async (p) => {
      const k = await p.iam.createKey(email);
      process.stderr.write(`created key ${k.keyId} for ${k.serviceAccount}; it is not stored and will not be shown again\n`);
      process.stdout.write(`${k.key}\n`);
    });
  });
  dataDirOption(
    keys.command('list').description('list key ids (never the secrets)').argument('<email>', 'service account')
      .option('--json', 'the keys (ids and times) as a JSON array'),
  ).action(async (email: string, o: ListFlags) => {
    await withPlatform(o, async (p) => {
      const keys = await p.iam.listKeys(email);
      if (o.json) return printJson(keys);
      if (keys.length === 0) return void process.stdout.write(`no keys for ${email}\n`);
      process.stdout.write(table(['KEY ID', 'CREATED', 'LAST USED'], keys.map((k) => [k.keyId, k.createTime, k.lastUsedTime ?? 'never used'])));
    });
  });
  dataDirOption(
    keys.command('delete').description('delete a key').argument('<email>', 'service account').argument('<key-id>', 'key id'),
  ).action(async (email: string, keyId: string, o: DataDirOption) => {
    await withPlatform(o, async (p) => {
      await p.iam.deleteKey(email, keyId);
      process.stdout.write(`deleted key ${keyId}\n`);
    });
  });

  dataDirOption(
    iam
      .command('bind')
      .description('grant a role to a member in a project')
      .requiredOption('--project <project>', "project ('*' for every project)")
      .requiredOption('--member <member>', 'serviceAccount:NAME@PROJECT.iam.gserviceaccount.com')
      .requiredOption('--role <role>', Object.keys(ROLES).join(' | ')),
  ).action(async (o: DataDirOption & { project: string; member: string; role: string }) => {
    await withPlatform(o, async (p) => {
      const b = await p.iam.addBinding(o.project, o.member, o.role);
      process.stdout.write(`bound ${b.role} to ${b.member} in ${b.project === '*' ? 'every project' : `project ${b.project}`}\n`);
    });
  });
  dataDirOption(
    iam
      .command('unbind')
      .description('remove a role binding')
      .requiredOption('--project <project>', 'project')
      .requiredOption('--member <member>', 'member')
      .requiredOption('--role <role>', 'role'),
  ).action(async (o: DataDirOption & { project: string; member: string; role: string }) => {
    await withPlatform(o, async (p) => {
      await p.iam.removeBinding(o.project, o.member, o.role);
      process.stdout.write(`removed ${o.role} from ${o.member} in project ${o.project}\n`);
    });
  });
  dataDirOption(
    iam.command('bindings').description('list role bindings').option('--project <project>', 'only this project (and * bindings)')
      .option('--json', 'the bindings as a JSON array'),
  ).action(async (o: ListFlags & { project?: string }) => {
    await withPlatform(o, async (p) => {
      const bindings = await p.iam.listBindings(o.project);
      if (o.json) return printJson(bindings);
      if (bindings.length === 0) return void process.stdout.write('no role bindings\n');
      process.stdout.write(table(['PROJECT', 'MEMBER', 'ROLE', 'CREATED'], bindings.map((b) => [b.project, b.member, b.role, b.createTime])));
    });
  });
}
