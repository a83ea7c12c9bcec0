import type pg from 'pg';
import { DEFAULT_LOCK_TIMEOUT_MS, lockChain } from '../audit/sql.js';
import type { AuditWriter, AuditWriterOptions, BatchCharger, ChargeBook, ChargeRound } from '../audit/writer.js';
import { actorsLiteral, bookFrom, READ_NOW, readUsage, readUsageBook, type Charge, type ChargeDecision, type UsageBook } from './ledger.js';

/**
 * Budget charges in the transaction of the audit row that records them: the two ways the service
 * charges (group-committed with the row, or inside a caller's transaction). The audit writer
 * knows nothing of budgets; it runs this charger in each charged batch.
 */

/** Beyond this many actors the cached usage is rebuilt from the batch's actors (bounded memory). */
const MAX_CACHED_ACTORS = 10_000;

/** An audit writer that charges budgets (appendCharged). */
export type BudgetedAuditWriter = AuditWriter<Charge, ChargeDecision>;

/** The AuditWriter options that make its appendCharged charge budgets. */
export function withBudgets(options: Omit<AuditWriterOptions<Charge, ChargeDecision>, 'charger'> = {}): AuditWriterOptions<Charge, ChargeDecision> {
  return { ...options, charger: new BudgetCharger() };
}

/**
 * Decides each charged batch's budgets. While the chain head is the one its writer committed
 * last, the usage it holds for the batch's actors is the table's (every charge is written with
 * its audit row, under the chain lock), so a batch decides against it without reading; otherwise
 * the usage is read in the batch's locking round trip, with the database clock.
 */
export class BudgetCharger implements BatchCharger<Charge, ChargeDecision> {
  /** Budget usage as of the writer's last commit, for the actors it charged (valid only together with that head). */
  private usage: UsageBook | undefined;
  /** Database clock minus this process's, as last measured: windows follow the database's clock. */
  private databaseClockOffset = 0;

  forget(): void {
    this.usage = undefined;
  }

  begin(charges: readonly Charge[]): ChargeRound<Charge, ChargeDecision> {
    const actors = [...new Set(charges.map((charge) => charge.actor))];
    const cached = this.usage;
    this.usage = undefined;
    return {
      cached: () => {
        if (cached === undefined || !actors.every((actor) => cached.knows(actor))) return undefined;
        cached.now = Date.now() + this.databaseClockOffset;
        return this.bookOf(cached);
      },
      reads: (escapeLiteral) => [READ_NOW, readUsage(actorsLiteral(escapeLiteral, actors))],
      fromResults: ([now, usage], headUnchanged) => {
        const book = bookFrom(now, usage, actors);
        this.databaseClockOffset = book.now - Date.now();
        // Nothing moved since the last commit: what was known of other actors still holds.
        if (headUnchanged && cached !== undefined && cached.size < MAX_CACHED_ACTORS) book.absorb(cached);
        return this.bookOf(book);
      },
    };
  }

  private bookOf(book: UsageBook): ChargeBook<Charge, ChargeDecision> {
    return {
      decide: (charge) => book.charge(charge),
      store: (escapeLiteral, condition) => book.upsert(escapeLiteral, condition),
      committed: () => {
        book.committed();
        this.usage = book;
      },
    };
  }
}

/**
 * Decides and records a budget charge inside the caller's open transaction, under the chain
 * lock (every charge is written in the transaction of the audit row that records it: the
 * caller appends that row with insertAudit before committing).
 */
export async function chargeBudget(client: pg.PoolClient, charge: Charge, options: { lockTimeoutMs?: number } = {}): Promise<ChargeDecision> {
  await client.query(lockChain(options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS));
  const book = await readUsageBook(client, [charge.actor]);
  const decision = book.charge(charge);
  const upsert = book.upsert((value) => client.escapeLiteral(value));
  if (upsert !== undefined) await client.query(upsert);
  return decision;
}
