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

/**
 * latestSignedTreeSize, read at most once per `ttlMs` (concurrent callers share the read): proof
 * endpoints answer thousands of requests a second, checkpoints change once an interval. A proof
 * may then be to a checkpoint up to ttlMs older than the newest; the answer names which one.
 */
export class SignedTreeSizeCache {
  private value: { at: number; size: SignedTreeSize | undefined } | undefined;
  private reading: Promise<SignedTreeSize | undefined> | undefined;
  /** Bumped by invalidate(): a read that started before it does not fill the cache. */
  private generation = 0;

  constructor(
    private readonly db: Queryable,
    private readonly ttlMs = 1_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** A checkpoint was just written (by this process): the next get() reads it. */
  invalidate(): void {
    this.generation += 1;
    this.value = undefined;
    this.reading = undefined;
  }

  get(): Promise<SignedTreeSize | undefined> {
    if (this.value !== undefined && this.now() - this.value.at < this.ttlMs) return Promise.resolve(this.value.size);
    if (this.reading !== undefined) return this.reading;
    const generation = this.generation;
    const reading = latestSignedTreeSize(this.db).finally(() => {
      if (this.reading === reading) this.reading = undefined;
    });
    this.reading = reading;
    return reading.then((size) => {
      if (generation === this.generation) this.value = { at: this.now(), size };
      return size;
    });
  }
}
