// Where the CLI client finds its server, key, project and location: each from its flag, else its
// environment variable, else the properties file `tunekit config set` writes (INI, section [core], as
// gcloud's), else a default. The file is $TUNEKIT_CONFIG_DIR/properties, or
// $XDG_CONFIG_HOME/tunekit/properties, or ~/.config/tunekit/properties; it holds the key, so it is
// written with mode 0600. A key or section the file should not hold is refused by name.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ini from 'ini';
import { InvalidRequestError } from '../errors.js';

export const CLIENT_PROPERTIES = ['project', 'location', 'api', 'key'] as const;
export type ClientProperty = (typeof CLIENT_PROPERTIES)[number];

export const PROPERTY_ENV: Record<ClientProperty, string> = {
  project: 'TUNEKIT_PROJECT',
  location: 'TUNEKIT_LOCATION',
  api: 'TUNEKIT_API',
  key: 'TUNEKIT_API_KEY',
};

/** `tunekit serve`'s default address, and Vertex's default location. The project has no default. */
export const PROPERTY_DEFAULTS: Partial<Record<ClientProperty, string>> = {
  api: 'http://127.0.0.1:8080',
  location: 'us-central1',
};

const SECTION = 'core';

export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TUNEKIT_CONFIG_DIR) return env.TUNEKIT_CONFIG_DIR;
  return path.join(env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config'), 'tunekit');
}

export function propertiesFile(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(configDir(env), 'properties');
}

export function isClientProperty(name: string): name is ClientProperty {
  return (CLIENT_PROPERTIES as readonly string[]).includes(name);
}

/** The property named by `name` (also `core/name`, as gcloud spells it); unknown names are refused. */
export function propertyName(name: string): ClientProperty {
  const bare = name.startsWith(`${SECTION}/`) ? name.slice(SECTION.length + 1) : name;
  if (!isClientProperty(bare)) throw new InvalidRequestError(`unknown property "${name}": tunekit config holds ${CLIENT_PROPERTIES.join(', ')}`);
  return bare;
}

/** A value `set` accepts: an http(s) URL for api, one path segment for project and location. */
export function checkPropertyValue(name: ClientProperty, value: string, where: string): string {
  if (name === 'api') {
    let url: URL | undefined;
    try {
      url = new URL(value);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new InvalidRequestError(`${where}: api must be an http(s) URL such as http://127.0.0.1:8080, got ${JSON.stringify(value)}`);
    }
    return value.replace(/\/+$/, '');
  }
  if (value === '' || (name !== 'key' && !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(value))) {
    throw new InvalidRequestError(`${where}: ${name} ${JSON.stringify(value)} is not valid (letters, digits, '.', '_' and '-')`);
  }
  return value;
}

/** The properties in the file (none when there is no file). */
export function readProperties(file = propertiesFile()): Partial<Record<ClientProperty, string>> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw e;
  }
  const parsed = ini.parse(text) as Record<string, unknown>;
  const out: Partial<Record<ClientProperty, string>> = {};
  for (const [section, body] of Object.entries(parsed)) {
    if (typeof body !== 'object' || body === null) {
      throw new InvalidRequestError(`${file}: "${section}" is outside a section: the file holds [${SECTION}] with ${CLIENT_PROPERTIES.join(', ')}`);
    }
    if (section !== SECTION) {
      throw new InvalidRequestError(`${file}: "${section}" is not a tunekit property section: the file holds [${SECTION}] with ${CLIENT_PROPERTIES.join(', ')}`);
    }
    for (const [k, v] of Object.entries(body)) {
      if (!isClientProperty(k)) throw new InvalidRequestError(`${file}: unknown property "${k}" in [${SECTION}]: tunekit config holds ${CLIENT_PROPERTIES.join(', ')}`);
      out[k] = checkPropertyValue(k, String(v), file);
    }
  }
  return out;
}

function writeProperties(props: Partial<Record<ClientProperty, string>>, file: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const body = Object.fromEntries(CLIENT_PROPERTIES.filter((k) => props[k] !== undefined).map((k) => [k, props[k]!]));
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, Object.keys(body).length ? ini.stringify({ [SECTION]: body }, { whitespace: true }) : '', { mode: 0o600 });
  fs.renameSync(tmp, file);
}

export function setProperty(name: ClientProperty, value: string, file = propertiesFile()): string {
  const checked = checkPropertyValue(name, value, `tunekit config set ${name}`);
  writeProperties({ ...readProperties(file), [name]: checked }, file);
  return checked;
}

export function unsetProperty(name: ClientProperty, file = propertiesFile()): void {
  const props = readProperties(file);
  delete props[name];
  writeProperties(props, file);
}

export type PropertySource = 'flag' | 'env' | 'config' | 'default';

export interface ResolvedProperty {
  value: string | undefined;
  source?: PropertySource;
}

/** One property by precedence: flag > environment > properties file > default. */
export function resolveProperty(
  name: ClientProperty, flag: string | undefined, env: NodeJS.ProcessEnv = process.env, props?: Partial<Record<ClientProperty, string>>,
): ResolvedProperty {
  if (flag !== undefined) return { value: checkPropertyValue(name, flag, `--${name}`), source: 'flag' };
  const e = env[PROPERTY_ENV[name]];
  if (e !== undefined && e !== '') return { value: checkPropertyValue(name, e, `$${PROPERTY_ENV[name]}`), source: 'env' };
  const fromFile = (props ?? readProperties(propertiesFile(env)))[name];
  if (fromFile !== undefined) return { value: fromFile, source: 'config' };
  const d = PROPERTY_DEFAULTS[name];
  return d === undefined ? { value: undefined } : { value: d, source: 'default' };
}

export interface ClientSettings {
  api: string;
  key?: string;
  project: string;
  location: string;
}

export type ClientFlags = Partial<Record<ClientProperty, string>>;

/** The settings a command talks to the server with; a missing project is a one-line error. */
export function resolveSettings(flags: ClientFlags, env: NodeJS.ProcessEnv = process.env): ClientSettings {
  const props = readProperties(propertiesFile(env));
  const get = (n: ClientProperty) => resolveProperty(n, flags[n], env, props).value;
  const project = get('project');
  if (project === undefined) {
    throw new InvalidRequestError(`no project: give --project NAME, set ${PROPERTY_ENV.project}, or run \`tunekit config set project NAME\``);
  }
  const key = get('key');
  return { api: get('api')!, project, location: get('location')!, ...(key !== undefined ? { key } : {}) };
}
