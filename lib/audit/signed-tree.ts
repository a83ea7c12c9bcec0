import type pg from 'pg';

type Queryable = Pick<pg.Pool, 'query'>;

/** The newest signed checkpoint, as proofs use it: which one, and the tree size it covers (rows 1..size). */
export interface SignedTreeSize {
  index: number;
  size: number;
}

/**
 * The tree size proofs are made to when the caller names none: the newest signed checkpoint's.
 * The one place that says where that comes from. Today: the newest row of audit_checkpoints,
 * whose JSON checkpoint covers rows 1..seq, so its tree size is seq. (The signed C2SP
 * checkpoint notes of issue 17 replace this body; callers do not change.) Not a verification:
 * a caller checks the proof's root against a checkpoint they hold, published outside the
 * database; this only picks the default size. undefined: nothing signed yet.
 */
export async function latestSignedTreeSize(db: Queryable): Promise<SignedTreeSize | undefined> {
  const { rows } = await db.query<{ idx: string; seq: string }>({ name: 'audit-latest-signed-size', text: 'SELECT idx, seq FROM audit_checkpoints ORDER BY idx DESC LIMIT 1' });
  const row = rows[0];
  return row === undefined ? undefined : { index: Number(row.idx), size: Number(row.seq) };
}
