import { describe, expect } from 'vitest';
import { revealTestFor } from '../../support/reveal-fixture.js';

const it = revealTestFor();

type JsonSchema = { properties?: Record<string, JsonSchema>; items?: JsonSchema; anyOf?: JsonSchema[]; oneOf?: JsonSchema[]; allOf?: JsonSchema[]; additionalProperties?: unknown };

/** Every property name declared anywhere in a schema, with where it was found. */
function propertyNames(schema: JsonSchema | undefined, where: string, into: [string, string][] = []): [string, string][] {
  if (schema === undefined || typeof schema !== 'object') return into;
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    into.push([name, `${where}.${name}`]);
    propertyNames(child, `${where}.${name}`, into);
  }
  propertyNames(schema.items, `${where}[]`, into);
  for (const list of [schema.anyOf, schema.oneOf, schema.allOf]) for (const [index, child] of (list ?? []).entries()) propertyNames(child, `${where}|${index}`, into);
  if (typeof schema.additionalProperties === 'object') propertyNames(schema.additionalProperties as JsonSchema, `${where}{}`, into);
  return into;
}

describe('one API style', () => {
  it('names every field of every response body snake_case, in the OpenAPI document the serializers follow', async ({ harness }) => {
    // Built as npm start builds it, so the local-only console routes are documented too.
    const local = await harness.buildApp({ CONSOLE_LOCAL_SIGN_IN: 'true' }, { localStack: true });
    const spec = (await local.inject({ url: '/docs/json' })).json<{
      paths: Record<string, Record<string, { responses?: Record<string, { content?: Record<string, { schema?: JsonSchema }> }> }>>;
    }>();
    const names: [string, string][] = [];
    for (const [path, operations] of Object.entries(spec.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        for (const [status, response] of Object.entries(operation.responses ?? {})) {
          for (const content of Object.values(response.content ?? {})) propertyNames(content.schema, `${method.toUpperCase()} ${path} ${status}`, names);
        }
      }
    }
    expect(names.length).toBeGreaterThan(100);
    expect(names.map(([, where]) => where)).toEqual(expect.arrayContaining(['GET /audit 200.next_cursor', 'POST /tokenize 200.key_version', 'POST /console/local-sign-in 200.access_token']));
    expect(names.filter(([name]) => !/^[a-z][a-z0-9]*(_[a-z0-9]+)*$/.test(name)).map(([, where]) => where)).toEqual([]);
  });
});
