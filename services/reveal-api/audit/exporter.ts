import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { setPriority } from 'node:os';
import { PassThrough, type Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { FastifyBaseLogger } from 'fastify';
import type { DatabaseConfig } from '../../../db/client.js';
import type { Env } from '../../../lib/config/env.js';

/** Nice value of an export process: about a tenth of a core against busy reveals (CFS weight 110 vs 1024), all of an idle one. */
export const EXPORT_NICENESS = 10;

export interface AuditExporterOptions {
  database: DatabaseConfig;
  /** Exports running at once in this replica; one more is refused (429 export_busy). */
  maxConcurrent: number;
  /** Each export reads at most this many rows a second (0: unpaced). */
  rowsPerSecond: number;
  /** The environment the export process inherits (proxy, CA and PG settings), DATABASE_* replaced. */
  env: Env;
  logger: FastifyBaseLogger;
}

/** A slot for one export: start() it once, or release() it unused. */
export interface ExportLease {
  start(afterSeq: number): Readable;
  release(): void;
}

// Compiled: dist/services/reveal-api/audit/exporter.js → dist/cli/audit-export.js; from source, the .ts beside it.
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const EXPORT_SCRIPT = fileURLToPath(new URL(`../../../cli/audit-export.${FROM_SOURCE ? 'ts' : 'js'}`, import.meta.url));
const PROJECT_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/**
 * coreutils' nice starts the process niced, every thread of it. Renicing it after the start
 * (setPriority) reaches only its main thread on Linux, not the garbage collector's and the
 * compiler's threads it already has: the fallback where nice is missing.
 */
const NICE = ['/usr/bin/nice', '/bin/nice'].find((path) => existsSync(path));

/**
 * GET /audit/export without slowing reveals (issue 16): the NDJSON is produced by a separate,
 * lowest-priority process (`npm run audit:export -- --out -` with the API's database settings
 * and one connection of its own), so neither its CPU (reading and canonicalising every row) nor
 * its connection comes out of the event loop or the pool that serve reveals; this process only
 * pipes its bytes to the client, with back-pressure (a slow client pauses the export through
 * the pipe). Its reads are paced (`rowsPerSecond`), which bounds the database's share too (the
 * PostgreSQL backend serving the export is not niced). At most `maxConcurrent` run per
 * replica; a client that goes away stops its export.
 */
export class AuditExporter {
  private readonly running = new Set<ChildProcess>();
  private leased = 0;

  constructor(private readonly options: AuditExporterOptions) {}

  /** A slot, or undefined when `maxConcurrent` exports already run here. */
  acquire(): ExportLease | undefined {
    if (this.leased >= this.options.maxConcurrent) return undefined;
    this.leased += 1;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.leased -= 1;
    };
    return { start: (afterSeq) => this.spawnExport(afterSeq, release), release };
  }

  /** Stops every running export (shutdown): their clients see a cut-off download. */
  close(): void {
    for (const child of this.running) child.kill('SIGTERM');
  }

  private spawnExport(afterSeq: number, release: () => void): Readable {
    const { database, env, logger } = this.options;
    const command = [process.execPath, ...(FROM_SOURCE ? ['--import', 'tsx'] : []), EXPORT_SCRIPT, '--out', '-', '--after-seq', String(afterSeq), '--rows-per-second', String(this.options.rowsPerSecond)];
    const [file, ...args] = NICE === undefined ? command : [NICE, '-n', String(EXPORT_NICENESS), ...command];
    const child = spawn(file as string, args, {
      cwd: PROJECT_ROOT,
      env: { ...env, DATABASE_URL: database.url, DATABASE_ROLE: database.role ?? 'reveal_api' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.running.add(child);
    if (NICE === undefined && child.pid !== undefined) {
      try {
        setPriority(child.pid, EXPORT_NICENESS);
      } catch (error) {
        logger.warn({ err: error }, 'could not lower the priority of the audit export process');
      }
    }
    let stderr = '';
    let clientGone = false;
    child.stderr?.on('data', (chunk: Buffer) => (stderr = `${stderr}${chunk.toString('utf8')}`.slice(-2000)));
    // Ends only when the process succeeded: a failed export must reach the client as a cut-off download, not a short one.
    const output = new PassThrough();
    child.stdout?.pipe(output, { end: false });
    const finish = (error: Error | undefined) => {
      this.running.delete(child);
      release();
      if (error === undefined) output.end();
      else if (clientGone) logger.info('audit export stopped: the client went away');
      else {
        logger.error({ err: error }, 'audit export failed; the download was cut off');
        output.destroy(error);
      }
    };
    child.once('error', (error) => finish(error));
    child.once('close', (code, signal) => {
      if (!this.running.has(child)) return;
      finish(code === 0 ? undefined : new Error(`audit export process ended with ${signal ?? `exit code ${code}`}: ${stderr.trim()}`));
    });
    // The client went away (or the response failed): stop reading the log for nobody.
    output.once('close', () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      clientGone = true;
      child.kill('SIGTERM');
    });
    return output;
  }
}
