import { describe, expect } from 'vitest';
import { revealTestFor } from '../../../support/reveal-fixture.js';
import { auditRows, bearer, PURPOSE, type RevealHarness } from '../../../support/reveal-harness.js';

const it = revealTestFor();

interface JsonSchema {
  type?: string;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
}
interface Operation {
  parameters?: { in: string; name: string; schema?: JsonSchema }[];
  requestBody?: { content?: { 'application/json'?: { schema?: JsonSchema } } };
  security?: unknown[];
}

/** One string input of one route, as its OpenAPI document declares it. */
interface StringInput {
  method: string;
  path: string;
  where: 'body' | 'body item' | 'query' | 'path';
  name: string;
}

/** Every string input of every route that needs a bearer token, from the app's own OpenAPI document (a new route is covered as it is added). */
function stringInputs(harness: RevealHarness): StringInput[] {
  const document = harness.app.swagger() as { paths: Record<string, Record<string, Operation>> };
  const inputs: StringInput[] = [];
  for (const [path, operations] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      if (operation.security === undefined) continue;
      for (const parameter of operation.parameters ?? []) {
        if (parameter.schema?.type === 'string' && (parameter.in === 'query' || parameter.in === 'path')) inputs.push({ method, path, where: parameter.in, name: parameter.name });
      }
      for (const [name, schema] of Object.entries(operation.requestBody?.content?.['application/json']?.schema?.properties ?? {})) {
        if (schema.type === 'string') inputs.push({ method, path, where: 'body', name });
        if (schema.type === 'array' && schema.items?.type === 'string') inputs.push({ method, path, where: 'body item', name });
      }
    }
  }
  return inputs;
}

const REQUEST_ID = '00000000-0000-4000-8000-000000000001';
let nextBatch = 0;

/** A request whose one input `input` holds `bad`; everything else is left out or a placeholder (the rule applies before the schema). */
function requestWith(input: StringInput, bad: string) {
  const pathValue = input.where === 'path' ? encodeURIComponent(bad) : REQUEST_ID;
  const url = input.path.replace(/\{[^}]+\}/g, pathValue) + (input.where === 'query' ? `?${input.name}=${encodeURIComponent(bad)}` : '');
  const payload = input.where === 'body' ? { [input.name]: bad } : input.where === 'body item' ? { [input.name]: ['ok', bad] } : undefined;
  return { method: input.method.toUpperCase() as 'GET' | 'POST', url, ...(payload === undefined ? {} : { payload }) };
}

describe('string inputs PostgreSQL cannot store (finding 7)', () => {
  it('covers every route that takes text: the enumeration is not empty', ({ harness }) => {
    const names = stringInputs(harness).map((input) => `${input.method} ${input.path} ${input.where}:${input.name}`);
    for (const expected of [
      'post /reveal body item:tokens',
      'post /reveal body:purpose',
      'post /reveal body:ticket',
      'post /approvals/{id} body:reason',
      'post /approvals/{id} path:id',
      'get /audit query:token',
      'get /audit query:actor',
      'post /persons/access body:user_id',
      'post /persons/erase body:user_id',
      'post /tokenize body item:values',
    ]) {
      expect(names).toContain(expected);
    }
  });

  // Query strings and paths carry UTF-8 only: an unpaired surrogate cannot be sent there, a NUL can (%00).
  it.for([
    ['a NUL', 'x\u0000y', /contains a NUL character/],
    ['an unpaired surrogate', 'x\ud800y', /contains an unpaired UTF-16 surrogate/],
  ] as const)('answers 400 invalid_request naming the field for %s in any string input of any route', async ([, bad, message], { harness }) => {
    const headers = bearer(await harness.token('careless', ['investigator', 'auditor', 'approver', 'privacy-officer', 'analyst']));
    const checked: string[] = [];
    for (const input of stringInputs(harness)) {
      if (bad.includes('\ud800') && (input.where === 'query' || input.where === 'path')) continue;
      const response = await harness.app.inject({ ...requestWith(input, bad), headers });
      const label = `${input.method} ${input.path} ${input.where}:${input.name}`;
      expect(response.statusCode, label).toBe(400);
      expect(response.json(), label).toEqual({ error: { code: 'invalid_request', message: expect.stringMatching(message) } });
      expect(response.json().error.message, label).toMatch(new RegExp(`^${input.name}(\\[1\\])?: `));
      checked.push(label);
    }
    expect(checked.length).toBeGreaterThanOrEqual(bad.includes('\ud800') ? 10 : 14);
  });

  it.for([
    ['approve', 'a NUL', 'ok\u0000reason'],
    ['approve', 'an unpaired surrogate', 'ok\udc00reason'],
    ['deny', 'a NUL', 'no\u0000reason'],
    ['deny', 'an unpaired surrogate', 'no\ud83dreason'],
  ] as const)('answers 400 (not 500) to an approval %s whose reason holds %s, and audits the attempt', async ([decision, , reason], { harness }) => {
    const requester = bearer(await harness.token('ria', ['investigator']));
    // 21 values: above the investigator's approval threshold, so the reveal waits for an approver.
    const batch = (nextBatch += 1);
    const tokens = (await harness.seed(Array.from({ length: 21 }, (_, index) => ({ field: 'ip' as const, value: `10.99.${batch}.${index + 1}` })))).map((seeded) => seeded.token);
    const pending = await harness.app.inject({ method: 'POST', url: '/reveal', headers: requester, payload: { tokens, purpose: PURPOSE } });
    expect(pending.statusCode).toBe(202);
    const id = (pending.json() as { request_id: string }).request_id;
    const approver = bearer(await harness.token('olga', ['approver']));
    const response = await harness.app.inject({ method: 'POST', url: `/approvals/${id}`, headers: approver, payload: { decision, reason } });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({ error: { code: 'invalid_request', message: expect.stringMatching(/^reason: contains (a NUL|an unpaired)/) } });
    expect((await auditRows(harness.testDb)).at(-1)).toMatchObject({ action: 'approval.decide', actor: 'olga', outcome: 'invalid', reason: 'validation_failed' });
    // Nothing was decided: a proper reason still works.
    const fine = await harness.app.inject({ method: 'POST', url: `/approvals/${id}`, headers: approver, payload: { decision, reason: 'checked against the ticket' } });
    expect(fine.statusCode).toBe(200);
  });
});
