import { cp, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { packagedBinaries, postgresBinaries } from '../../../local/postgres/binaries.js';
import { canExecute, postgresRunAs } from '../../../local/postgres/system-user.js';

const scratch: string[] = [];
afterAll(() => Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true }))));

describe('PostgreSQL binaries', () => {
  it('are used where the package installed them when we are not root or the postgres account can reach them', async ({ skip }) => {
    const packaged = await packagedBinaries();
    const runAs = await postgresRunAs();
    // Root whose postgres account cannot reach the checkout: the binaries are linked elsewhere (the next test).
    skip(runAs !== undefined && !canExecute(runAs, packaged.postgres), 'the postgres account cannot run the packaged binaries here');
    expect(await postgresBinaries(runAs)).toEqual(packaged);
  });

  it.runIf(process.getuid?.() === 0)('as root, are linked where the postgres account can run them when the checkout is in a 0700 directory', async () => {
    const runAs = await postgresRunAs();
    if (runAs === undefined) throw new Error('root without a postgres account');
    const packaged = await packagedBinaries();
    const privateDir = await mkdtemp(join(tmpdir(), 'tokenvault-test-checkout-'));
    scratch.push(privateDir);
    const native = join(privateDir, 'node_modules', 'native');
    await cp(dirname(dirname(packaged.postgres)), native, { recursive: true, verbatimSymlinks: true });
    const unreachable = { initdb: join(native, 'bin', 'initdb'), postgres: join(native, 'bin', 'postgres') };
    expect(canExecute(runAs, unreachable.postgres)).toBe(false);

    const usable = await postgresBinaries(runAs, unreachable);
    expect(usable.postgres.startsWith(privateDir)).toBe(false);
    expect(canExecute(runAs, usable.postgres)).toBe(true);
    expect(canExecute(runAs, usable.initdb)).toBe(true);
    const shared = await stat(dirname(dirname(usable.postgres)));
    expect({ uid: shared.uid, writableByOthers: (shared.mode & 0o022) !== 0 }).toEqual({ uid: 0, writableByOthers: false });
  }, 120_000);
});
