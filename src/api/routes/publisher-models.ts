// Publisher models: `projects/{p}/locations/{l}/publishers/{pub}/models/{m}` get, and the methods
// :generateContent, :streamGenerateContent (alt=sse), :countTokens, :computeTokens on them; the same
// without the project prefix (`publishers/{pub}/models` list and get, and express-mode generation).
// Order in every handler: credentials and permission (401, 403), location (400: the supported
// locations are told only to callers who may use them), model (404), body, then (generate-methods.ts) the
// model's lock for generation, so bad requests never wait behind a running generation.

import type { Context, Hono } from 'hono';
import { guard, PERMISSIONS } from '../auth.js';
import { body, checkLocation, requestSignal, type ApiContext } from '../context.js';
import { apiVersionOf } from '../proto-json.js';
import { notFound } from '../errors.js';
import { handle, splitVerb, type Verb } from './generate-methods.js';

function publisherModelJson(served: { publisher: string; name: string; createTime: string }): Record<string, unknown> {
  return {
    name: `publishers/${served.publisher}/models/${served.name}`,
    versionId: '1',
    openSourceCategory: 'THIRD_PARTY_OWNED_OSS',
    launchStage: 'GA',
    publisherModelTemplate: `projects/{project}/locations/{location}/publishers/${served.publisher}/models/${served.name}`,
  };
}

export function registerPublisherModelRoutes(app: Hono, api: ApiContext): void {
  // GET publishers/{pub}/models (v1beta1 ListPublisherModels; no paging: catalogs are small).
  app.get('/publishers/:publisher/models', async (c) => {
    await api.auth.authenticate(c.req.raw.headers);
    const models = (await api.catalog.store.list(c.req.param('publisher'))).sort((a, b) => a.name.localeCompare(b.name));
    return c.json(models.length ? { publisherModels: models.map(publisherModelJson) } : {});
  });

  // GET publishers/{pub}/models/{m} (no project: publisher models are public, callers must still authenticate).
  app.get('/publishers/:publisher/models/:model', async (c) => {
    await api.auth.authenticate(c.req.raw.headers);
    return c.json(publisherModelJson(await api.catalog.registration(c.req.param('publisher'), c.req.param('model'))));
  });

  app.get('/projects/:project/locations/:location/publishers/:publisher/models/:model', async (c) => {
    const { project, location, publisher, model } = c.req.param();
    await guard(api.auth, c.req.raw.headers, PERMISSIONS.publisherModelsGet, project);
    await checkLocation(api, location);
    return c.json(publisherModelJson(await api.catalog.registration(publisher, model)));
  });

  app.post('/projects/:project/locations/:location/publishers/:publisher/models/:call', async (c) => {
    const { project, location, publisher, call } = c.req.param();
    const method = splitVerb(call);
    if (!method) throw notFound(`The requested URL ${new URL(c.req.url).pathname} was not found on this server.`);
    await guard(api.auth, c.req.raw.headers, PERMISSIONS.predict, project);
    await checkLocation(api, location);
    return generation(c, publisher, method.name, method.verb, project);
  });

  // Express mode: an SDK given an API key and no project sends publishers/{pub}/models/{m}:verb. The
  // project is the one the key's service account belongs to (any project without authentication).
  app.post('/publishers/:publisher/models/:call', async (c) => {
    const { publisher, call } = c.req.param();
    const method = splitVerb(call);
    if (!method) throw notFound(`The requested URL ${new URL(c.req.url).pathname} was not found on this server.`);
    const principal = await api.auth.authenticate(c.req.raw.headers);
    const project = principal.email ? principal.email.split('@')[1]!.split('.')[0]! : 'express';
    await api.auth.authorize(principal, PERMISSIONS.predict, project);
    return generation(c, publisher, method.name, method.verb, project);
  });

  async function generation(c: Context, publisher: string, name: string, verb: Verb, project: string): Promise<Response> {
    await api.catalog.registration(publisher, name); // 404 before reading the body or loading the model
    const request = await body(api, c);
    const served = await api.catalog.served(publisher, name);
    return handle(api, verb, served, request, c.req.query('alt'), requestSignal(api, c), apiVersionOf(c.req.url), { project });
  }
}

