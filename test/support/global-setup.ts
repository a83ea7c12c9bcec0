import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../../local/embedded-postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    postgresAdminUrl: string;
  }
}

/**
 * One real PostgreSQL cluster for the whole run, on a port the OS picks, in a private temporary
 * directory that stop() deletes; each test file creates its own database in it.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const pg = await startEmbeddedPostgres({ temporaryPrefix: 'tokenvault-test-pg-' });
  project.provide('postgresAdminUrl', pg.adminUrl('postgres'));
  return () => pg.stop();
}
