// Generation on endpoints: `projects/{p}/locations/{l}/endpoints/{e}` :generateContent,
// :streamGenerateContent, :countTokens, :computeTokens. What an endpoint serves (a registered base
// model plus, for a tuned model, its adapter directory) comes from an EndpointResolver, which the
// registry implements; without one every endpoint is 404. Credentials and permission (401, 403) are
// checked before the location (400), so an anonymous caller never learns the supported locations.

import type { Hono } from 'hono';
import { guard, PERMISSIONS } from '../auth.js';
import { body, checkLocation, requestSignal, type ApiContext } from '../context.js';
import { apiVersionOf } from '../proto-json.js';
import { notFound } from '../errors.js';
import { handle, splitVerb } from './generate-methods.js';

/** What an endpoint serves. */
export interface EndpointTarget {
  /** The registered base model: publishers/{publisher}/models/{model}. */
  publisher: string;
  model: string;
  /** Local directory of the PEFT adapter of the deployed tuned model; absent for a base model. */
  adapterDir?: string;
  /** Reported as modelVersion, e.g. projects/p/locations/l/models/123@1. */
  modelVersion: string;
}

export interface EndpointResolver {
  /** The endpoint's target; throws NOT_FOUND when the endpoint does not exist or serves nothing. */
  resolve(project: string, location: string, endpoint: string): EndpointTarget | Promise<EndpointTarget>;
}

export const noEndpoints: EndpointResolver = {
  resolve: (project, location, endpoint) => {
    throw notFound(`Endpoint \`projects/${project}/locations/${location}/endpoints/${endpoint}\` not found.`);
  },
};

export function registerEndpointRoutes(app: Hono, api: ApiContext, endpoints: EndpointResolver): void {
  app.post('/projects/:project/locations/:location/endpoints/:call', async (c) => {
    const { project, location, call } = c.req.param();
    const method = splitVerb(call);
    if (!method) throw notFound(`The requested URL ${new URL(c.req.url).pathname} was not found on this server.`);
    await guard(api.auth, c.req.raw.headers, PERMISSIONS.predict, project);
    await checkLocation(api, location);
    const target = await endpoints.resolve(project, location, method.name);
    const request = await body(api, c);
    const served = target.adapterDir === undefined
      ? await api.catalog.served(target.publisher, target.model)
      : await api.catalog.servedWithAdapter(target.publisher, target.model, target.adapterDir, target.modelVersion);
    return handle(api, method.verb, served, request, c.req.query('alt'), requestSignal(api, c), apiVersionOf(c.req.url), { project, endpoint: method.name });
  });
}
