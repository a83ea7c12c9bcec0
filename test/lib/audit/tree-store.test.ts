import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { createDatabase, type Database } from '../../../db/client.js';
import { MIGRATIONS_FOLDER, runMigrations } from '../../../db/migrate.js';
import { withTransaction } from '../../../db/transaction.js';
import { linkEntries, type AuditEntry } from '../../../lib/audit/entry.js';
import { insertAudit } from '../../../lib/audit/insert.js';
import { auditLeafHash } from '../../../lib/audit/merkle/audit-leaf.js';
import { MemoryMerkleTree } from '../../../lib/audit/merkle/memory-tree.js';
import { consistencyProof, inclusionProof } from '../../../lib/audit/merkle/node-store.js';
import { verifyConsistency, verifyInclusion } from '../../../lib/audit/merkle/verify.js';
import { verifyHashChain } from '../../../lib/audit/hash-chain-verifier.js';
import { readAuditRows } from '../../../lib/audit/reader.js';
import { INSERT_ROWS } from '../../../lib/audit/sql.js';
import { AuditTreeGapError, backfillAuditTree } from '../../../lib/audit/tree-backfill.js';
import { PgNodeStore, treeHead } from '../../../lib/audit/tree-store.js';
import { AuditWriter } from '../../../lib/audit/writer.js';
import { applyRetention } from '../../../lib/lifecycle/retention.js';
import { createDatabaseIfMissing } from '../../../local/embedded-postgres.js';
import { createTestDatabase, type TestDatabase } from '../../support/database.js';
import { runCli } from '../../support/processes.js';
import { bearer, PURPOSE, startRevealHarness, writePolicyFile, type RevealHarness, type SeededValue } from '../../support/reveal-harness.js';
import { tamperAuditLog } from '../../support/tamper-audit-log.js';

type Queryable = Pick<pg.Pool, 'query'>;

function entry(actor: string, tokens: string[] = []): AuditEntry {
  return { action: 'reveal', actor, roles: ['investigator'], clientAddress: '10.0.0.1', requestId: null, purpose: 'tree test', ticket: null, tokens, fieldCounts: { ip: tokens.length }, outcome: 'allowed', reason: null };
}

/** The tree recomputed in memory from the rows as stored (canonical bytes read back, as an auditor would). */
async function memoryTreeOf(db: Queryable): Promise<MemoryMerkleTree> {
  const tree = new MemoryMerkleTree();
  for await (const page of readAuditRows(db)) for (const row of page) tree.appendLeafHash(auditLeafHash(row));
  return tree;
}

/**
 * The stored tree is exactly the tree of the log: one leaf per row, every stored node equal to
 * the recomputed one, nothing more (2n − popcount(n) nodes), the same root, and proofs from the
 * stored nodes that verify against it.
 */
async function expectTreeMatchesLog(db: Queryable): Promise<{ size: number }> {
  const memory = await memoryTreeOf(db);
  const n = memory.size;
  const head = await treeHead(db);
  expect(head.size).toBe(n);
  expect(head.root.toString('hex')).toBe(memory.root().toString('hex'));
  const { rows } = await db.query<{ level: number; idx: string; hash: Buffer }>('SELECT level, idx, hash FROM audit_tree_nodes ORDER BY level, idx');
  const popcount = n.toString(2).replaceAll('0', '').length;
  expect(rows).toHaveLength(2 * n - popcount);
  const expected = memory.store.getNodesSync(rows.map((row) => ({ level: row.level, index: Number(row.idx) })));
  rows.forEach((row, position) => expect(row.hash.toString('hex'), `node ${row.level}/${row.idx}`).toBe(expected[position]?.toString('hex')));
  const store = new PgNodeStore(db);
  for (let index = 0; index < n; index += Math.max(1, Math.floor(n / 25))) {
    const leaf = memory.store.getNodesSync([{ level: 0, index }])[0]!;
    expect(verifyInclusion(index, n, leaf, await inclusionProof(store, index, n), head.root)).toBe(true);
  }
  for (const m of [1, Math.floor(n / 3), n - 1].filter((size) => size >= 1 && size < n)) {
    expect(verifyConsistency(m, n, memory.root(m), head.root, await consistencyProof(store, m, n))).toBe(true);
  }
  return { size: n };
}

async function logSize(db: Queryable): Promise<number> {
  return Number((await db.query<{ n: string }>('SELECT coalesce(max(seq), 0) AS n FROM audit_log')).rows[0]?.n);
}

const POLICY = {
  roles: {
    investigator: { reveal: { ip: 'plain', device_id: 'plain' }, approval: { fields: ['device_id'] } },
    budgeted: { reveal: { ip: 'plain', device_id: 'plain' }, budget: { per_hour: 1000 } },
    approver: { approve: true },
    'privacy-officer': { erase: ['ip', 'device_id'] },
    auditor: { audit: true },
  },
  approval: { ttl_seconds: 600, approvers_required: 1 },
};

describe('Merkle nodes of every audit row', () => {
  let harness: RevealHarness;
  let values: SeededValue[];

  beforeAll(async () => {
    harness = await startRevealHarness({ POLICY_FILE: await writePolicyFile(POLICY) });
    values = await harness.seed([
      { field: 'ip', value: '172.16.5.4' },
      { field: 'device_id', value: '987-65-4321' },
      { field: 'ip', value: '172.16.5.5' },
    ]);
  }, 120_000);
  afterAll(async () => {
    await harness?.close();
  });

  const as = async (sub: string, roles: string[]) => bearer(await harness.token(sub, roles));
  const ip = () => values[0]!.token;

  it('are stored in the row\'s own transaction by every path: group commit (plain and charged), two replicas at once, insertAudit alone and in a caller\'s transaction, approvals, erase, refusals, retention', async () => {
    const { app } = harness;
    const other = await harness.buildApp();
    const reveal = async (target: typeof app, sub: string, role: string) =>
      target.inject({ method: 'POST', url: '/reveal', headers: await as(sub, [role]), payload: { tokens: [ip()], purpose: PURPOSE } });

    // Group commit, both replicas, with and without budgets (appendCharged), interleaved with direct inserts.
    const reveal_api = harness.database.pool;
    const responses = await Promise.all(
      Array.from({ length: 40 }, async (_, index) => {
        if (index % 5 === 4) return withTransaction(reveal_api, (client) => insertAudit(client, entry(`direct-${index}`, [ip()]))).then(() => 200);
        const response = await reveal(index % 2 === 0 ? app : other, `user-${index}`, index % 3 === 0 ? 'budgeted' : 'investigator');
        return response.statusCode;
      }),
    );
    expect(responses).toEqual(Array(40).fill(200));
    await insertAudit(reveal_api, [entry('pool-1'), entry('pool-2')]);

    // Four-eyes: request (202), approve, collect: each step's row in the step's transaction.
    const requested = await app.inject({ method: 'POST', url: '/reveal', headers: await as('ivan', ['investigator']), payload: { tokens: [values[1]!.token], purpose: PURPOSE } });
    expect(requested.statusCode).toBe(202);
    const id = requested.json<{ request_id: string }>().request_id;
    expect((await app.inject({ method: 'POST', url: `/approvals/${id}`, headers: await as('olga', ['approver']), payload: { decision: 'approve', reason: 'case file checked' } })).statusCode).toBe(200);
    expect((await app.inject({ url: `/reveal-requests/${id}`, headers: await as('ivan', ['investigator']) })).statusCode).toBe(200);

    // Erase (its row joins the delete's transaction) and a refusal (403, the error handler's row).
    expect((await app.inject({ method: 'POST', url: '/erase', headers: await as('pia', ['privacy-officer']), payload: { tokens: [values[2]!.token], purpose: PURPOSE } })).statusCode).toBe(200);
    expect((await app.inject({ url: '/audit', headers: await as('mallory', ['investigator']) })).statusCode).toBe(403);

    // Maintenance: a retention shred writes its system row through insertAudit as the owner.
    await harness.testDb.owner.pool.query('INSERT INTO retention_shred_candidates (token) VALUES ($1)', [values[0]!.token]);
    await applyRetention({ pool: harness.testDb.owner.pool }, { loginRetentionDays: undefined, quarantineRetentionDays: undefined, batchSize: 10, today: new Date() });
    const { rows: system } = await harness.testDb.owner.pool.query<{ action: string }>("SELECT action FROM audit_log WHERE actor = 'system:maintenance'");
    expect(system.map((row) => row.action)).toEqual(['retention.shred']);

    const actions = new Set((await harness.testDb.owner.pool.query<{ action: string }>('SELECT DISTINCT action FROM audit_log')).rows.map((row) => row.action));
    expect([...actions].sort()).toEqual(['approval.approve', 'audit_read', 'erase', 'retention.shred', 'reveal', 'reveal.collect', 'reveal.request'].sort());
    expect((await verifyHashChain(harness.testDb.owner.pool)).ok).toBe(true);
    const { size } = await expectTreeMatchesLog(harness.testDb.owner.pool);
    expect(size).toBe(await logSize(harness.testDb.owner.pool));
  });

  it('are readable by the auditor role, and nobody can change them: not reveal_api, not the auditor, not the owner while the triggers are on', async () => {
    const auditor = harness.testDb.as('auditor');
    const reveal_api = harness.database;
    const owner = harness.testDb.owner;
    // At least one row, so there is a node to try to change, whichever test ran before.
    await insertAudit(reveal_api.pool, entry('first-node'));
    expect((await treeHead(auditor.pool)).size).toBe(await logSize(owner.pool));
    await expect(auditor.pool.query("INSERT INTO audit_tree_nodes (level, idx, hash) VALUES (40, 0, decode(repeat('00', 32), 'hex'))")).rejects.toThrow(/permission denied/);
    for (const db of [reveal_api, auditor]) {
      await expect(db.pool.query("UPDATE audit_tree_nodes SET hash = decode(repeat('00', 32), 'hex') WHERE level = 0 AND idx = 0")).rejects.toThrow(/permission denied/);
      await expect(db.pool.query('DELETE FROM audit_tree_nodes WHERE level = 0 AND idx = 0')).rejects.toThrow(/permission denied/);
    }
    await expect(owner.pool.query("UPDATE audit_tree_nodes SET hash = decode(repeat('00', 32), 'hex') WHERE level = 0 AND idx = 0")).rejects.toThrow(/append-only: UPDATE/);
    await expect(owner.pool.query('DELETE FROM audit_tree_nodes WHERE level = 0 AND idx = 0')).rejects.toThrow(/append-only: DELETE/);
    await expect(owner.pool.query('TRUNCATE audit_tree_nodes')).rejects.toThrow(/append-only: TRUNCATE/);
    // A node is 32 bytes at a real position: a malformed insert is refused, even for the owner.
    await expect(owner.pool.query("INSERT INTO audit_tree_nodes (level, idx, hash) VALUES (63, 0, decode(repeat('00', 32), 'hex'))")).rejects.toThrow(/check constraint/);
    await expect(owner.pool.query("INSERT INTO audit_tree_nodes (level, idx, hash) VALUES (40, 0, decode('00', 'hex'))")).rejects.toThrow(/check constraint/);
    // Only with the triggers off can the owner rewrite a node (then only signed, published checkpoints expose it); undone here.
    const undo = new Error('undo the rewrite');
    const rewrite = tamperAuditLog(owner.pool, async (client) => {
      const changed = await client.query("UPDATE audit_tree_nodes SET hash = decode(repeat('00', 32), 'hex') WHERE level = 0 AND idx = 0");
      expect(changed.rowCount).toBe(1);
      throw undo;
    });
    await expect(rewrite).rejects.toBe(undo);
    await expectTreeMatchesLog(owner.pool);
  });
});

describe('rows written without nodes, and a tree that does not fit the log', () => {
  let testDb: TestDatabase;
  let reveal: Database;

  // A fresh log per test: the first counts rows from an empty log, whichever test ran before it.
  beforeEach(async () => {
    testDb = await createTestDatabase();
    reveal = testDb.as('reveal_api');
  });
  afterEach(async () => {
    await testDb?.drop();
  });

  it('a writer that finds the tree behind the log writes on, catches the tree up in the background, then stores nodes again', async () => {
    const old = new AuditWriter(reveal.pool, { treeNodes: false });
    await Promise.all(Array.from({ length: 30 }, (_, index) => old.append(entry(`old-${index}`))));
    await old.close();
    expect((await treeHead(testDb.owner.pool)).size).toBe(0);

    const errors: unknown[] = [];
    const writer = new AuditWriter(reveal.pool, { treeCatchUp: { batchRows: 7, onError: (error) => errors.push(error) } });
    const first = await writer.append(entry('new-1'));
    expect(first).toBe(31);
    await writer.treeCaughtUp();
    expect(errors).toEqual([]);
    expect((await treeHead(testDb.owner.pool)).size).toBe(31);
    // From now on the writer's own appends carry their nodes again, one round trip per batch.
    await Promise.all(Array.from({ length: 20 }, (_, index) => writer.append(entry(`new-${index + 2}`))));
    await insertAudit(reveal.pool, entry('direct'));
    await writer.close();
    await expectTreeMatchesLog(testDb.owner.pool);
  });

  it('a row missing from the log stops the catch-up with an error naming it; appends go on', async () => {
    const old = new AuditWriter(reveal.pool, { treeNodes: false });
    await Promise.all(Array.from({ length: 5 }, (_, index) => old.append(entry(`gap-${index}`))));
    await old.close();
    const missing = (await treeHead(testDb.owner.pool)).size + 2;
    await tamperAuditLog(testDb.owner.pool, `DELETE FROM audit_log WHERE seq = ${missing}`);

    const errors: unknown[] = [];
    const writer = new AuditWriter(reveal.pool, { treeCatchUp: { onError: (error) => errors.push(error) } });
    await writer.append(entry('after-gap'));
    await writer.treeCaughtUp();
    await writer.close();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(AuditTreeGapError);
    expect(errors[0]).toMatchObject({ expectedSeq: missing, foundSeq: missing + 1 });
    expect((await treeHead(testDb.owner.pool)).size).toBe(missing - 1);
  });

  it('a tree ahead of the log (tail rows deleted by the owner) refuses appends instead of overwriting a node', async () => {
    const fresh = await createTestDatabase();
    try {
      const pool = fresh.as('reveal_api').pool;
      await insertAudit(pool, [entry('a'), entry('b'), entry('c')]);
      await tamperAuditLog(fresh.owner.pool, 'DELETE FROM audit_log WHERE seq = 3');
      const before = await fresh.owner.pool.query<{ level: number; idx: string; hash: Buffer }>('SELECT level, idx, hash FROM audit_tree_nodes ORDER BY level, idx');
      await expect(insertAudit(pool, entry('d'))).rejects.toThrow(/audit_tree_nodes_pkey/);
      const writer = new AuditWriter(pool);
      await expect(writer.append(entry('e'))).rejects.toThrow(/audit log cannot be written/);
      await writer.close();
      expect(await logSize(fresh.owner.pool)).toBe(2);
      expect((await fresh.owner.pool.query('SELECT level, idx, hash FROM audit_tree_nodes ORDER BY level, idx')).rows).toEqual(before.rows);
    } finally {
      await fresh.drop();
    }
  });
});

describe('an audit log from before migration 0011', () => {
  interface Journal {
    entries: { idx: number; tag: string }[];
  }
  let folder: string;
  let name: string;
  let database: Database;

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'tokenvault-migrations-'));
    const journal = JSON.parse(await readFile(join(MIGRATIONS_FOLDER, 'meta/_journal.json'), 'utf8')) as Journal;
    const earlier = journal.entries.filter((item) => item.idx < 11);
    await mkdir(join(folder, 'meta'));
    await writeFile(join(folder, 'meta/_journal.json'), JSON.stringify({ ...journal, entries: earlier }));
    for (const item of earlier) await copyFile(join(MIGRATIONS_FOLDER, `${item.tag}.sql`), join(folder, `${item.tag}.sql`));
    const adminUrl = inject('postgresAdminUrl');
    name = `t_${randomBytes(6).toString('hex')}`;
    await createDatabaseIfMissing(adminUrl, name);
    database = createDatabase({ url: adminUrl.replace(/\/postgres$/, `/${name}`), role: undefined, poolSize: 3 });
  });
  afterAll(async () => {
    await database?.close();
    const client = new pg.Client({ connectionString: inject('postgresAdminUrl') });
    await client.connect();
    await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await client.end();
    await rm(folder, { recursive: true, force: true });
  });

  it('gets its tree from `npm run db:migrate`: same root as recomputed from the rows, resumable, a no-op the second time', { timeout: 120_000 }, async () => {
    await migrate(database.db, { migrationsFolder: folder });
    expect((await database.pool.query("SELECT to_regclass('audit_tree_nodes') AS t")).rows[0].t).toBeNull();
    // Written as the previous release did: linked rows, no nodes (there is no table for them yet).
    let head: { seq: number; hash: Buffer } | undefined;
    const total = 2_345;
    for (let from = 0; from < total; from += 500) {
      const entries = Array.from({ length: Math.min(500, total - from) }, (_, index) => entry(`before-${from + index}`, [`ip_v1_${String(from + index).padStart(43, 'A')}`]));
      const linked = linkEntries(entries, head?.seq ?? 0, head?.hash ?? null, new Date(Date.UTC(2026, 0, 1) + from * 1000).toISOString());
      await database.pool.query(INSERT_ROWS, [JSON.stringify(linked.rows)]);
      head = linked.last;
    }

    await runMigrations(database);
    expect((await treeHead(database.pool)).size).toBe(0);
    // Interrupted after the first transaction: what it stored stays, the next run resumes after it.
    const partial = await backfillAuditTree(database.pool, { batchRows: 1000, stopped: () => true });
    expect(partial).toEqual({ from: 0, size: 1000, caughtUp: false });

    const url = database.pool.options.connectionString ?? '';
    const run = await runCli('cli/migrate.ts', { DATABASE_URL: url });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`audit Merkle tree built over rows 1001..${total}`);
    await expectTreeMatchesLog(database.pool);

    const again = await runCli('cli/migrate.ts', { DATABASE_URL: url });
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`audit Merkle tree complete (${total} rows)`);
    // New rows after the migration carry their nodes from the start.
    await insertAudit(database.pool, entry('after-migration'));
    expect((await expectTreeMatchesLog(database.pool)).size).toBe(total + 1);
  });
});
