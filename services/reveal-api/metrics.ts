import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Per-app registry (no global default registry: several apps can live in one process, e.g. tests). */
export interface RevealMetrics {
  registry: Registry;
  requests: Counter<'action' | 'outcome'>;
  revealedValues: Counter<'field' | 'redaction'>;
  auditWrite: Histogram;
  auditBatchSize: Histogram;
  rateLimited: Counter<'action'>;
  auditCheckpoints: Counter;
  auditCheckpointSeq: Gauge;
  auditCheckpointFailures: Counter<'reason'>;
  auditSinkFailures: Counter<'sink'>;
  auditSinkPending: Gauge<'sink'>;
  budgetExhausted: Counter<'budget'>;
  breakGlassReveals: Counter;
  approvalSteps: Counter<'step'>;
  approvalWebhook: Counter<'result'>;
  refusalsSummarised: Counter<'code'>;
  approvalUnverified: Counter<'reason'>;
  budgetMismatch: Counter<'budget'>;
  refusalsRecovered: Counter;
  addressGuardHits: Counter<'action'>;
}

export function createRevealMetrics(): RevealMetrics {
  const registry = new Registry();
  // Process and runtime metrics (CPU, memory, event-loop lag, GC), unprefixed as dashboards expect them.
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    requests: new Counter({
      name: 'tokenvault_reveal_requests_total',
      help: 'Audited reveal-api attempts by action and outcome',
      labelNames: ['action', 'outcome'],
      registers: [registry],
    }),
    revealedValues: new Counter({
      name: 'tokenvault_revealed_values_total',
      help: 'Values revealed, by field and redaction',
      labelNames: ['field', 'redaction'],
      registers: [registry],
    }),
    auditWrite: new Histogram({
      name: 'tokenvault_audit_write_seconds',
      help: 'Time from an audit entry being appended to its row being committed',
      buckets: [0.0002, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    auditBatchSize: new Histogram({
      name: 'tokenvault_audit_batch_rows',
      help: 'Audit rows committed per transaction (group commit)',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
      registers: [registry],
    }),
    rateLimited: new Counter({
      name: 'tokenvault_rate_limit_hits_total',
      help: 'Requests refused by the per-actor rate limit',
      labelNames: ['action'],
      registers: [registry],
    }),
    auditCheckpoints: new Counter({
      name: 'tokenvault_audit_checkpoints_total',
      help: 'Signed audit checkpoints written by this replica',
      registers: [registry],
    }),
    auditCheckpointSeq: new Gauge({
      name: 'tokenvault_audit_checkpoint_seq',
      help: 'Audit seq covered by the newest checkpoint this replica wrote',
      registers: [registry],
    }),
    auditCheckpointFailures: new Counter({
      name: 'tokenvault_audit_checkpoint_failures_total',
      help: 'Checkpoint rounds that failed: sign (KMS), database, or chain (the log did not verify: refused to sign)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    auditSinkFailures: new Counter({
      name: 'tokenvault_audit_checkpoint_sink_failures_total',
      help: 'Failed attempts to publish a checkpoint to a sink (retried with backoff)',
      labelNames: ['sink'],
      registers: [registry],
    }),
    auditSinkPending: new Gauge({
      name: 'tokenvault_audit_checkpoint_sink_pending',
      help: 'Checkpoints waiting to be published, per sink',
      labelNames: ['sink'],
      registers: [registry],
    }),
    budgetExhausted: new Counter({
      name: 'tokenvault_budget_exhausted_total',
      help: 'Reveals refused because they would exceed a budget (minute, hour, day, break_glass)',
      labelNames: ['budget'],
      registers: [registry],
    }),
    breakGlassReveals: new Counter({
      name: 'tokenvault_break_glass_reveals_total',
      help: 'Reveals made with break_glass (approval skipped)',
      registers: [registry],
    }),
    approvalSteps: new Counter({
      name: 'tokenvault_approval_steps_total',
      help: 'Four-eyes steps: requested, approved, approved_partially, denied, collected, expired',
      labelNames: ['step'],
      registers: [registry],
    }),
    approvalWebhook: new Counter({
      name: 'tokenvault_approval_webhook_total',
      help: 'Approval webhook notices by result (ok, failed)',
      labelNames: ['result'],
      registers: [registry],
    }),
    refusalsSummarised: new Counter({
      name: 'tokenvault_audit_refusals_summarised_total',
      help: 'Repeated refusals counted into a summary audit row instead of a row each',
      labelNames: ['code'],
      registers: [registry],
    }),
    approvalUnverified: new Counter({
      name: 'tokenvault_approval_unverified_total',
      help: 'Collections refused because the reveal request row does not match the audit chain (edited or forged by someone with database rights)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    budgetMismatch: new Counter({
      name: 'tokenvault_budget_mismatch_total',
      help: 'Budget windows whose stored usage was below what the audit chain shows (reset by someone with database rights), found and raised by reconciliation',
      labelNames: ['budget'],
      registers: [registry],
    }),
    refusalsRecovered: new Counter({
      name: 'tokenvault_audit_refusals_recovered_total',
      help: 'Refusals summarised by this replica on behalf of a replica that stopped before writing their summary (kill -9, crash)',
      registers: [registry],
    }),
    addressGuardHits: new Counter({
      name: 'tokenvault_address_guard_hits_total',
      help: 'Requests refused before authentication because their client address sent too many requests without valid credentials',
      labelNames: ['action'],
      registers: [registry],
    }),
  };
}
