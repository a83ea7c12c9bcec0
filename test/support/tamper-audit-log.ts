import type pg from 'pg';

/** The append-only audit tables: their user triggers refuse UPDATE, DELETE and TRUNCATE, even to the owner. */
export const AUDIT_TABLES = ['audit_log', 'audit_tree_nodes', 'audit_checkpoints'] as const;

/**
 * Changes the audit tables the way the person with database owner rights can: in one
 * transaction, the append-only triggers of every audit table switched off, `change` run, the
 * triggers switched back on, committed. `change` is SQL (with optional parameters) or a function
 * given the transaction's client. Rolled back, triggers and all, if the change fails.
 */
export async function tamperAuditLog(
  owner: pg.Pool,
  change: string | ((client: pg.PoolClient) => Promise<unknown>),
  params: unknown[] = [],
): Promise<void> {
  const client = await owner.connect();
  try {
    await client.query('BEGIN');
    // audit_log first, as an append takes it first: a tamper waits for appends in flight rather than deadlocking with one.
    for (const table of AUDIT_TABLES) await client.query(`ALTER TABLE ${table} DISABLE TRIGGER USER`);
    // Without parameters SQL goes by the simple protocol, so `change` may hold several statements.
    if (typeof change === 'string') await (params.length === 0 ? client.query(change) : client.query(change, params));
    else await change(client);
    for (const table of AUDIT_TABLES) await client.query(`ALTER TABLE ${table} ENABLE TRIGGER USER`);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}
