import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runAuditVerify } from '../../../cli/audit-verify.js';
import type { Tokenizer } from '../../../lib/crypto/tokens.js';
import { DataKeyRing } from '../../../lib/keys/data-key-ring.js';
import { LocalKeyring } from '../../../lib/keys/local-keyring.js';
import { loadActiveTokenizer } from '../../../lib/keys/token-keys.js';
import { runMaintenance, type MaintenanceSettings } from '../../../lib/lifecycle/maintenance.js';
import { createMaintenanceMetrics, pushMetrics, type MaintenanceMetrics } from '../../../lib/lifecycle/metrics.js';
import { listPartitions } from '../../../lib/lifecycle/partitions.js';
import { KnownTokens } from '../../../services/ingestor/known-tokens.js';
import type { InboundMessage } from '../../../services/ingestor/message.js';
import { createSink, type Sink } from '../../../services/ingestor/sink.js';
import { createTestDatabase, type TestDatabase } from '../../support/database.js';
import { loginEvent, type LoginFields } from '../../support/ingestor-harness.js';

let testDb: TestDatabase;
let sink: Sink;
let tokenizer: Tokenizer;

// A fixed "today", far from the months the migration prepared around the real date.
const TODAY = new Date('2024-06-15T10:00:00Z');
const settings = (overrides: Partial<MaintenanceSettings> = {}): MaintenanceSettings => ({
  loginRetentionDays: undefined,
  quarantineRetentionDays: undefined,
  batchSize: 2,
  monthsAhead: 2,
  today: TODAY,
  ...overrides,
});

// Maintenance moves and removes rows: each test starts from a fresh database and writes what it needs.
beforeEach(async () => {
  testDb = await createTestDatabase();
  const ingestorDb = testDb.as('ingestor');
  const keys = LocalKeyring.fromKey(randomBytes(32));
  const ring = new DataKeyRing(ingestorDb.db, keys, { maxUses: 1_000_000, maxAgeMs: 3_600_000 });
  tokenizer = await loadActiveTokenizer(ingestorDb.db, keys);
  // No known-token cache: every batch writes its vault values (ON CONFLICT keeps the first).
  sink = createSink({ database: ingestorDb, dataKeys: ring, tokenizer: () => tokenizer, knownTokens: new KnownTokens(0) });
});
afterEach(async () => {
  await testDb?.drop();
});

function message(fields: LoginFields | string, sentAt: string, messageId = randomUUID()): InboundMessage {
  return { messageId, body: typeof fields === 'string' ? fields : JSON.stringify(fields), sentAt: new Date(sentAt), receiveCount: 1 };
}

async function query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
  return (await testDb.owner.pool.query(sql, params)).rows as T[];
}

async function partitionOf(messageId: string): Promise<string | undefined> {
  return (await query<{ p: string }>('SELECT tableoid::regclass::text AS p FROM user_logins WHERE message_id = $1', [messageId]))[0]?.p;
}

async function maintain(metrics: MaintenanceMetrics, overrides: Partial<MaintenanceSettings> = {}, dryRun = false) {
  return runMaintenance({ pool: testDb.owner.pool, metrics }, settings(overrides), dryRun);
}

async function vaultHas(token: string | undefined): Promise<boolean> {
  if (token === undefined) throw new Error('no token');
  return (await query('SELECT 1 FROM pii_vault WHERE token = $1', [token])).length === 1;
}

const counter = (metrics: MaintenanceMetrics, name: keyof MaintenanceMetrics, labels: Record<string, string> = {}) =>
  metrics.registry.getSingleMetric(`tokenvault_maintenance_${metricName(name)}`)?.get().then((m) => m.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value ?? 0);

function metricName(name: keyof MaintenanceMetrics): string {
  return {
    partitionsCreated: 'partitions_created_total',
    rowsMoved: 'rows_moved_total',
    partitionsDropped: 'retention_partitions_dropped_total',
    rowsRemoved: 'retention_rows_removed_total',
    vaultShredded: 'retention_vault_values_shredded_total',
    lastSuccess: 'last_success_timestamp_seconds',
    durationSeconds: 'duration_seconds',
    registry: '',
  }[name];
}

describe('partitioned user_logins', () => {
  const lastOfMarch = message(loginEvent(), '2024-03-31T23:59:59.900Z');
  const firstOfApril = message(loginEvent(), '2024-04-01T00:00:00.100Z');
  /** Both boundary messages stored, then split out of the default partition by a maintenance run. */
  async function storeAndSplit() {
    expect(await sink.write([lastOfMarch, firstOfApril])).toMatchObject({ stored: 2 });
    await maintain(createMaintenanceMetrics());
  }

  it('stores a message dated outside the prepared months in the default partition instead of failing the batch', async () => {
    const result = await sink.write([lastOfMarch, firstOfApril]);
    expect(result).toMatchObject({ stored: 2, quarantined: 0, splitAfterError: false });
    expect(await partitionOf(lastOfMarch.messageId)).toBe('user_logins_default');
  });

  it('maintenance prepares the months ahead and splits the default partition into month partitions', async () => {
    expect(await sink.write([lastOfMarch, firstOfApril])).toMatchObject({ stored: 2 });
    const metrics = createMaintenanceMetrics();
    const report = await maintain(metrics);
    expect(report.partitionsCreated).toEqual(['user_logins_p202406', 'user_logins_p202407', 'user_logins_p202408']);
    expect(report.splitFromDefault).toEqual({ partitions: ['user_logins_p202403', 'user_logins_p202404'], rows: 2 });
    expect(await partitionOf(lastOfMarch.messageId)).toBe('user_logins_p202403');
    expect(await partitionOf(firstOfApril.messageId)).toBe('user_logins_p202404');
    expect(await query('SELECT 1 FROM user_logins_default')).toEqual([]);
    expect(await counter(metrics, 'partitionsCreated')).toBe(5);
    expect(await counter(metrics, 'rowsMoved', { from: 'default' })).toBe(2);
    // Running again finds nothing to do.
    const again = await maintain(createMaintenanceMetrics());
    expect(again.partitionsCreated).toEqual([]);
    expect(again.splitFromDefault.rows).toBe(0);
  });

  it('keeps redeliveries idempotent across the month boundary: the same SentTimestamp hits the key in the same partition', async () => {
    await storeAndSplit();
    const redelivered = [lastOfMarch, firstOfApril].map((m) => ({ ...m, receiveCount: 2 }));
    expect(await sink.write(redelivered)).toMatchObject({ stored: 0, duplicates: 2 });
    const rows = await query<{ n: number }>('SELECT count(*)::int AS n FROM user_logins WHERE message_id = ANY($1)', [[lastOfMarch.messageId, firstOfApril.messageId]]);
    expect(rows[0]?.n).toBe(2);
  });

  it('lets analysts read every partition through user_logins (not the partitions directly) and the ingestor write new ones', async () => {
    await storeAndSplit();
    const analyst = testDb.as('analyst');
    const { rows } = await analyst.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM user_logins');
    expect(rows[0]?.n).toBe(2);
    await expect(analyst.pool.query('SELECT * FROM user_logins_p202403')).rejects.toMatchObject({ code: '42501' });
    await expect(analyst.pool.query('SELECT * FROM user_logins_default')).rejects.toMatchObject({ code: '42501' });
    await expect(testDb.as('reveal_api').pool.query('SELECT * FROM user_logins_p202403')).rejects.toMatchObject({ code: '42501' });
    const july = message(loginEvent(), '2024-07-02T08:00:00Z');
    expect(await sink.write([july])).toMatchObject({ stored: 1 });
    expect(await partitionOf(july.messageId)).toBe('user_logins_p202407');
    await expect(testDb.as('ingestor').pool.query('SELECT * FROM user_logins_p202407')).rejects.toMatchObject({ code: '42501' });
  });
});

describe('retention', () => {
  const sharedIp = '203.0.113.7';
  const oldOnly = { ip: '198.51.100.1', device_id: '111-11-1111' };
  let january: InboundMessage;
  let may: InboundMessage;
  let march: InboundMessage;
  let quarantined: InboundMessage;

  beforeEach(async () => {
    january = message(loginEvent({ ip: sharedIp, device_id: oldOnly.device_id }), '2024-01-10T12:00:00Z');
    march = message(loginEvent({ ip: oldOnly.ip }), '2024-03-05T12:00:00Z');
    may = message(loginEvent({ ip: sharedIp }), '2024-05-20T12:00:00Z');
    quarantined = message('{"foo":"oops"}', '2024-01-02T00:00:00Z');
    // The March boundary login (2 values only it uses) and an April one, as ingested before.
    const lastOfMarch = message(loginEvent(), '2024-03-31T23:59:59.900Z');
    const firstOfApril = message(loginEvent(), '2024-04-01T00:00:00.100Z');
    await sink.write([lastOfMarch, firstOfApril, january, march, may, quarantined]);
    await query(`UPDATE quarantine SET received_at = '2024-01-02' WHERE message_id = $1`, [quarantined.messageId]);
    await maintain(createMaintenanceMetrics());
  });

  const retention = { loginRetentionDays: 75, quarantineRetentionDays: 30 }; // rows before 2024-04-01; quarantine before 2024-05-16

  it('dry run reports what would go and changes nothing (no audit rows either)', async () => {
    const before = await query('SELECT count(*)::int AS n FROM audit_log');
    const report = await maintain(createMaintenanceMetrics(), retention, true);
    expect(report.dryRun).toBe(true);
    if (!('plan' in report.retention)) throw new Error('expected a plan');
    const plan = report.retention.plan;
    expect(plan.loginCutoff).toBe('2024-04-01');
    expect(plan.partitions.map((p) => [p.name, p.rows])).toEqual([
      ['user_logins_p202401', 1],
      ['user_logins_p202403', 2],
    ]);
    // january's device, march's ip and device, and the March boundary row's two values; the shared IP stays.
    expect(plan.valuesToShred).toEqual({ ip: 2, device_id: 3 });
    expect(plan.quarantineRows).toBe(1);
    expect((await listPartitions(testDb.owner.pool)).map((p) => p.name)).toContain('user_logins_p202401');
    expect(await query('SELECT count(*)::int AS n FROM audit_log')).toEqual(before);
  });

  it('drops exactly the expired partitions and shreds exactly the values no remaining row references', async () => {
    const metrics = createMaintenanceMetrics();
    const tokens = {
      shared: tokenizer.tokenize('ip', sharedIp),
      oldDevice: tokenizer.tokenize('device_id', oldOnly.device_id),
      oldIp: tokenizer.tokenize('ip', oldOnly.ip),
    };
    const mayRow = (await query<{ masked_device_id: string }>('SELECT masked_device_id FROM user_logins WHERE message_id = $1', [may.messageId]))[0];
    const report = await maintain(metrics, retention);
    if (!('result' in report.retention)) throw new Error('expected a result');
    const result = report.retention.result;
    expect(result.partitionsDropped.map((p) => p.name)).toEqual(['user_logins_p202401', 'user_logins_p202403']);
    expect(result.loginRowsRemoved).toBe(3);
    expect(result.shredded).toEqual({ ip: 2, device_id: 3 });
    expect(result.valuesKept).toBe(1);
    expect(result.quarantineRowsRemoved).toBe(1);

    const names = (await listPartitions(testDb.owner.pool)).map((p) => p.name);
    expect(names).not.toContain('user_logins_p202401');
    expect(names).not.toContain('user_logins_p202403');
    expect(names).toContain('user_logins_p202404');
    expect(await vaultHas(tokens.shared)).toBe(true); // still referenced by May's row
    expect(await vaultHas(tokens.oldDevice)).toBe(false);
    expect(await vaultHas(tokens.oldIp)).toBe(false);
    expect(await vaultHas(mayRow?.masked_device_id ?? '')).toBe(true);
    expect(await query('SELECT 1 FROM user_logins WHERE message_id = $1', [may.messageId])).toHaveLength(1);
    expect(await query('SELECT 1 FROM quarantine WHERE message_id = $1', [quarantined.messageId])).toEqual([]);
    expect(await query('SELECT 1 FROM retention_shred_candidates')).toEqual([]);

    expect(await counter(metrics, 'partitionsDropped')).toBe(2);
    expect(await counter(metrics, 'rowsRemoved', { table: 'user_logins' })).toBe(3);
    expect(await counter(metrics, 'rowsRemoved', { table: 'quarantine' })).toBe(1);
    expect(await counter(metrics, 'vaultShredded', { field: 'ip' })).toBe(2);
    expect(await counter(metrics, 'vaultShredded', { field: 'device_id' })).toBe(3);
  });

  it('audits every drop and shred as a system action with counts, in the intact hash chain, without plaintext', async () => {
    await maintain(createMaintenanceMetrics(), retention);
    const rows = await query<{ action: string; actor: string; roles: string[]; field_counts: Record<string, number>; reason: string; tokens: string[] }>(
      `SELECT action, actor, roles, field_counts, reason, tokens FROM audit_log WHERE actor = 'system:maintenance' ORDER BY seq`,
    );
    const drops = rows.filter((r) => r.action === 'retention.drop_partition');
    expect(drops.map((r) => r.field_counts.rows)).toEqual([1, 2]);
    expect(drops[0]?.reason).toContain('user_logins_p202401');
    const shreds = rows.filter((r) => r.action === 'retention.shred');
    expect(shreds.reduce((sum, r) => sum + (r.field_counts.ip ?? 0) + (r.field_counts.device_id ?? 0), 0)).toBe(5);
    expect(shreds.flatMap((r) => r.tokens)).toContain(tokenizer.tokenize('ip', oldOnly.ip));
    expect(rows.filter((r) => r.action === 'retention.quarantine').map((r) => r.field_counts.rows)).toEqual([1]);
    expect(rows.every((r) => r.roles.length === 0)).toBe(true);

    const dump = JSON.stringify(await query('SELECT * FROM audit_log'));
    for (const value of [sharedIp, oldOnly.ip, oldOnly.device_id]) expect(dump).not.toContain(value);
    const lines: string[] = [];
    expect(await runAuditVerify({ DATABASE_URL: testDb.url }, { out: (l) => lines.push(l), err: (l) => lines.push(l) })).toBe(0);
  });

  it('has nothing left to remove on the next run', async () => {
    await maintain(createMaintenanceMetrics(), retention);
    const report = await maintain(createMaintenanceMetrics(), retention);
    if (!('result' in report.retention)) throw new Error('expected a result');
    expect(report.retention.result).toMatchObject({ partitionsDropped: [], loginRowsRemoved: 0, quarantineRowsRemoved: 0, valuesChecked: 0 });
  });

  it('pushes the run metrics to a Pushgateway', async () => {
    const received: { method: string; url: string; body: string }[] = [];
    const server: Server = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        received.push({ method: request.method ?? '', url: request.url ?? '', body });
        response.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const metrics = createMaintenanceMetrics();
      metrics.partitionsDropped.inc(2);
      await pushMetrics(metrics, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
      expect(received[0]).toMatchObject({ method: 'PUT', url: '/metrics/job/tokenvault_maintenance' });
      expect(received[0]?.body).toContain('tokenvault_maintenance_retention_partitions_dropped_total 2');
    } finally {
      server.close();
    }
  });
});
