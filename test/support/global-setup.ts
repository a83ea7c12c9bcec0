import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../../local/embedded-postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    postgresAdminUrl: string;
  }
}

/** One real PostgreSQL cluster for the whole run; each test file creates its own database in it. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = await mkdtemp(join(tmpdir(), 'tokenvault-test-pg-'));
  const { chmod } = await import('node:fs/promises');
  await chmod(dir, 0o755);
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const pg = await startEmbeddedPostgres({ dir: join(dir, 'data'), port, persistent: false });
  project.provide('postgresAdminUrl', pg.adminUrl('postgres'));
  return async () => {
    await pg.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
