import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'vitest';
import type { Env } from '../../lib/config/env.js';
import type { PiiField } from '../../lib/crypto/normalize.js';
import { SAMPLE_VALUES, startRevealHarness, writePolicyFile, type RevealHarness, type SeededValue } from './reveal-harness.js';

/**
 * The reveal harness as vitest fixtures (`test.extend`): a test names what it needs —
 * `({ harness, sample, seeded }) => …` — and gets it built, shared and closed for it.
 *
 * - `revealTestFor(setup)`: one harness for every test of the file (a file-scoped fixture),
 *   started before the first test and closed after the last.
 * - `freshRevealTestFor(setup)`: a fresh harness, on a fresh database, for every test.
 */

/** How a file's harness is built. */
export interface RevealSetup {
  /** Settings on top of the harness defaults; as a function, given a fresh temporary directory (e.g. for key files) removed with the harness. */
  env?: Env | ((dir: string) => Env);
  /** A policy document: written to a temporary file and given as POLICY_FILE. */
  policy?: unknown;
  /** Values sealed into the vault for the `seeded` fixture (in this order). */
  seed?: { field: PiiField; value: string }[];
}

/** SAMPLE_VALUES as sealed into the vault: an IPv4 address, a device id, an IPv6 address, another device id. */
export interface Sample {
  ip: SeededValue;
  device: SeededValue;
  ipv6: SeededValue;
  device2: SeededValue;
}

export interface FixtureOptions {
  /** How long starting the harness and sealing `seed` may take (default: the hook timeout). */
  timeout?: number;
}

/** Starts the harness `setup` describes; `close` closes it and removes what the setup wrote. */
async function openHarness(setup: RevealSetup): Promise<{ harness: RevealHarness; close: () => Promise<void> }> {
  const dir = typeof setup.env === 'function' ? await mkdtemp(join(tmpdir(), 'tokenvault-reveal-fixture-')) : undefined;
  const removeDir = async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  };
  try {
    const env = typeof setup.env === 'function' ? setup.env(dir as string) : setup.env;
    const policy = setup.policy === undefined ? {} : { POLICY_FILE: await writePolicyFile(setup.policy) };
    const harness = await startRevealHarness({ ...env, ...policy });
    return {
      harness,
      close: async () => {
        await harness.close();
        await removeDir();
      },
    };
  } catch (error) {
    await removeDir();
    throw error;
  }
}

async function sealSample(harness: RevealHarness): Promise<Sample> {
  const [ip, device, ipv6, device2] = (await harness.seed(SAMPLE_VALUES)) as [SeededValue, SeededValue, SeededValue, SeededValue];
  return { ip, device, ipv6, device2 };
}

/** One harness per file; `sample` and `seeded` are sealed once, when a test first names them. */
export const revealTest = test
  .extend('revealSetup', { scope: 'file' }, {} as RevealSetup)
  .extend('harness', { scope: 'file' }, async ({ revealSetup }, { onCleanup }) => {
    const { harness, close } = await openHarness(revealSetup);
    onCleanup(close);
    return harness;
  })
  .extend('sample', { scope: 'file' }, async ({ harness }) => sealSample(harness))
  .extend('seeded', { scope: 'file' }, async ({ harness, revealSetup }) => harness.seed(revealSetup.seed ?? []));

/** A harness per test, closed after it. */
export const freshRevealTest = test
  .extend('revealSetup', {} as RevealSetup)
  .extend('harness', async ({ revealSetup }, { onCleanup }) => {
    const { harness, close } = await openHarness(revealSetup);
    onCleanup(close);
    return harness;
  })
  .extend('sample', async ({ harness }) => sealSample(harness))
  .extend('seeded', async ({ harness, revealSetup }) => harness.seed(revealSetup.seed ?? []));

/**
 * The file's tests, sharing one harness built from `setup`. It starts in a beforeAll (so under
 * the hook timeout, not the first test's), with `setup.seed` sealed; it closes after the last test.
 */
export function revealTestFor(setup: RevealSetup = {}, options: FixtureOptions = {}): typeof revealTest {
  const it = revealTest.override('revealSetup', setup);
  it.beforeAll(async ({ harness, seeded }) => {
    void harness;
    void seeded;
  }, options.timeout);
  return it;
}

/** The file's tests, each with a fresh harness built from `setup` (started in a beforeEach, `setup.seed` sealed). */
export function freshRevealTestFor(setup: RevealSetup = {}, options: FixtureOptions = {}): typeof freshRevealTest {
  const it = freshRevealTest.override('revealSetup', setup);
  it.beforeEach(async ({ harness, seeded }) => {
    void harness;
    void seeded;
  }, options.timeout);
  return it;
}
