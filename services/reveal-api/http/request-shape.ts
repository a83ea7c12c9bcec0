import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { safeRendering } from '../../../lib/validation/storable-text.js';

/**
 * What a request looks like without what it says: the route pattern, the names of its query
 * parameters and body fields that the route declares, and counts and a digest of the rest.
 * Used where a request must be described but its values must not be kept (request logs,
 * audit rows of anonymous refusals). A name the route does not declare is counted, not shown:
 * `?199.172.111.135` would make a value of a name.
 */
export interface RequestShape {
  /** The route pattern (`/reveal-requests/:id`), or null when no route matched (the path is not shown). */
  route: string | null;
  query: string[];
  unknownQuery: number;
}

/** Names a zod object schema (or its JSON-schema form) declares, if it is one. */
function declaredNames(schema: unknown): ReadonlySet<string> {
  const shape = (schema as { shape?: unknown } | undefined)?.shape ?? (schema as { properties?: unknown } | undefined)?.properties;
  return shape !== null && typeof shape === 'object' ? new Set(Object.keys(shape)) : new Set();
}

const declared = new WeakMap<object, { query: ReadonlySet<string>; body: ReadonlySet<string> }>();

function routeNames(request: FastifyRequest): { query: ReadonlySet<string>; body: ReadonlySet<string> } {
  const schema = request.routeOptions.schema;
  if (schema === undefined) return { query: new Set(), body: new Set() };
  let names = declared.get(schema);
  if (names === undefined) {
    names = { query: declaredNames(schema.querystring), body: declaredNames(schema.body) };
    declared.set(schema, names);
  }
  return names;
}

/** A route as registered: method, pattern and the query parameters its schema declares. */
export interface RouteEntry {
  method: string;
  url: string;
  query: string[];
}

/** Every route of `app` as it is added (install before registering routes): what the request-log test walks through. */
export function collectRoutes(app: FastifyInstance): readonly RouteEntry[] {
  const routes: RouteEntry[] = [];
  app.addHook('onRoute', (route) => {
    const query = [...declaredNames(route.schema?.querystring)];
    for (const method of Array.isArray(route.method) ? route.method : [route.method]) routes.push({ method: method.toUpperCase(), url: route.url, query });
  });
  return routes;
}

export function shapeOf(request: FastifyRequest): RequestShape {
  const route = request.routeOptions.url ?? null;
  const queryStart = request.url.indexOf('?');
  if (queryStart < 0) return { route, query: [], unknownQuery: 0 };
  const known = routeNames(request).query;
  const query = new Set<string>();
  let unknownQuery = 0;
  for (const name of new URLSearchParams(request.url.slice(queryStart + 1)).keys()) {
    if (known.has(name)) query.add(name);
    else unknownQuery += 1;
  }
  return { route, query: [...query].sort(), unknownQuery };
}

/**
 * A request refused before anyone was identified, as an audit reason suffix: what it claimed to
 * be (rendered safely, marked unverified), and what it sent as sizes, counts and a SHA-256,
 * never the tokens, purpose or ticket themselves.
 */
export function describeUnverified(request: FastifyRequest, claimed: { sub?: string; role?: string }): string {
  const parts: string[] = [];
  if (claimed.sub !== undefined) parts.push(`claimed_sub=${safeRendering(claimed.sub)} (unverified)`);
  if (claimed.role !== undefined) parts.push(`claimed_role=${safeRendering(claimed.role)}`);
  parts.push(`sent: ${sentDigest(request)}`);
  return parts.join(' ');
}

/** Bytes of the body a refusal was answered with, if it was read. */
export function bodyBytes(request: FastifyRequest): number {
  return request.rawBody === undefined ? 0 : Buffer.byteLength(request.rawBody);
}

function sentDigest(request: FastifyRequest): string {
  const parts: string[] = [];
  const raw = request.rawBody;
  if (raw !== undefined) {
    parts.push(`body_bytes=${Buffer.byteLength(raw)}`, `body_sha256=${createHash('sha256').update(raw).digest('hex')}`);
    const fields = bodyFields(request);
    if (fields !== undefined) parts.push(`fields=${fields}`);
  } else {
    const length = request.headers['content-length'];
    if (typeof length === 'string' && /^[0-9]{1,15}$/.test(length)) parts.push(`content_length=${length}`);
  }
  const type = request.headers['content-type'];
  if (typeof type === 'string' && !/^application\/json\b/i.test(type)) parts.push(`content_type=${safeRendering(type, 40)}`);
  const { query, unknownQuery } = shapeOf(request);
  if (query.length > 0) parts.push(`query=${query.join(',')}`);
  if (unknownQuery > 0) parts.push(`other_query_parameters=${unknownQuery}`);
  return parts.length === 0 ? 'nothing' : parts.join(' ');
}

/** `tokens[100],purpose:500ch,ticket:128ch,other_fields=2`: declared fields by size, the rest counted. */
function bodyFields(request: FastifyRequest): string | undefined {
  const body = request.body;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return undefined;
  const known = routeNames(request).body;
  const parts: string[] = [];
  let others = 0;
  for (const [name, value] of Object.entries(body as Record<string, unknown>)) {
    if (!known.has(name)) {
      others += 1;
      continue;
    }
    if (Array.isArray(value)) parts.push(`${name}[${value.length}]`);
    else if (typeof value === 'string') parts.push(`${name}:${value.length}ch`);
    else parts.push(`${name}:${value === null ? 'null' : typeof value}`);
  }
  if (others > 0) parts.push(`other_fields=${others}`);
  return parts.join(',');
}
