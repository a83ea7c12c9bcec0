import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { KeyProvider } from '../../lib/keys/key-provider.js';
import { BoundedNames, MAX_FIELD_NAMES, OTHER_FIELDS } from './unknown-fields.js';

export interface IngestorMetrics {
  registry: Registry;
  received: Counter;
  stored: Counter;
  duplicates: Counter;
  quarantined: Counter<'reason'>;
  retried: Counter<'cause'>;
  batchSeconds: Histogram;
  kmsCalls: Counter<'operation'>;
  inFlight: Gauge;
  deleteFailures: Counter;
  /** SQS ReceiveMessage round trips (long-poll waits included). */
  receiveSeconds: Histogram;
  /** SQS DeleteMessageBatch round trips. */
  deleteSeconds: Histogram;
  /** Changes of the receive concurrency limit, by reason. */
  limitChanges: Counter<'reason'>;
  /** Labelled by field name: only ever through `unknownFieldNames` (bounded). */
  unknownFields: Counter<'field'>;
  unknownFieldNames: BoundedNames;
}

/** Metrics on a registry of their own: several ingestors (tests, the embedded `npm start`) never collide. */
/** What the transport holds now, read at scrape time. */
export interface TransportState {
  limit: number;
  receiving: number;
  inFlightMessages: number;
}

export function createIngestorMetrics(registry = new Registry(), transport?: () => TransportState): IngestorMetrics {
  const prefix = 'tokenvault_ingestor_';
  // Process and runtime metrics (CPU, memory, event-loop lag, GC), unprefixed as dashboards expect them.
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    received: new Counter({ name: `${prefix}messages_received_total`, help: 'SQS messages received (distinct per batch)', registers: [registry] }),
    stored: new Counter({ name: `${prefix}messages_stored_total`, help: 'Login rows written to user_logins', registers: [registry] }),
    duplicates: new Counter({
      name: `${prefix}messages_duplicate_total`,
      help: 'Redelivered messages already stored or quarantined (skipped)',
      registers: [registry],
    }),
    quarantined: new Counter({
      name: `${prefix}messages_quarantined_total`,
      help: 'Messages quarantined, by first reason code',
      labelNames: ['reason'],
      registers: [registry],
    }),
    retried: new Counter({
      name: `${prefix}batches_retried_total`,
      help: 'Batches left on the queue after a transient failure (database, KMS or SQS unreachable)',
      labelNames: ['cause'],
      registers: [registry],
    }),
    batchSeconds: new Histogram({
      name: `${prefix}batch_duration_seconds`,
      help: 'Time to validate, tokenise, encrypt and commit one batch',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    kmsCalls: new Counter({
      name: `${prefix}key_provider_calls_total`,
      help: 'Calls to the key provider (KMS), by operation',
      labelNames: ['operation'],
      registers: [registry],
    }),
    inFlight: new Gauge({ name: `${prefix}batches_in_flight`, help: 'Batches being processed now', registers: [registry] }),
    unknownFields: new Counter({
      name: `${prefix}unknown_fields_total`,
      help: `Fields login events do not define, dropped from stored messages, by name (the first ${MAX_FIELD_NAMES} names, then ${OTHER_FIELDS})`,
      labelNames: ['field'],
      registers: [registry],
    }),
    unknownFieldNames: new BoundedNames(),
    deleteFailures: new Counter({
      name: `${prefix}delete_failures_total`,
      help: 'Committed messages SQS did not delete (they come back and are skipped as duplicates)',
      registers: [registry],
    }),
    receiveSeconds: new Histogram({
      name: `${prefix}sqs_receive_seconds`,
      help: 'SQS ReceiveMessage round trips (an empty long poll lasts its whole wait)',
      buckets: [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20],
      registers: [registry],
    }),
    deleteSeconds: new Histogram({
      name: `${prefix}sqs_delete_seconds`,
      help: 'SQS DeleteMessageBatch round trips',
      buckets: [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    limitChanges: new Counter({
      name: `${prefix}receive_concurrency_changes_total`,
      help: 'Changes of the receive concurrency limit: backlog (up), idle, receive_error, handler_error, memory (down)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    ...transportGauges(prefix, registry, transport),
  };
}

/** Gauges read from the transport when scraped (no bookkeeping on the hot path). */
function transportGauges(prefix: string, registry: Registry, transport: (() => TransportState) | undefined): Record<string, never> {
  if (transport === undefined) return {};
  const gauge = (name: string, help: string, read: (state: TransportState) => number) =>
    new Gauge({
      name: `${prefix}${name}`,
      help,
      registers: [registry],
      collect() {
        this.set(read(transport()));
      },
    });
  gauge('receive_concurrency', 'Receives the concurrency limit allows in flight now (follows latency between INGESTOR_POLLERS_MIN and _MAX)', (s) => s.limit);
  gauge('receives_in_flight', 'SQS receives in flight now', (s) => s.receiving);
  gauge('messages_in_flight', 'Messages received and not yet deleted (bounded by INGESTOR_MAX_IN_FLIGHT_MESSAGES)', (s) => s.inFlightMessages);
  return {};
}

/** Counts every key-provider call, so KMS cost and outages show up in /metrics. */
export function countingKeyProvider(inner: KeyProvider, calls: Counter<'operation'>): KeyProvider {
  return {
    description: inner.description,
    generateDataKey: (purpose) => {
      calls.inc({ operation: 'generateDataKey' });
      return inner.generateDataKey(purpose);
    },
    decryptDataKey: (key, purpose) => {
      calls.inc({ operation: 'decryptDataKey' });
      return inner.decryptDataKey(key, purpose);
    },
    rewrapDataKey: (key, purpose) => {
      calls.inc({ operation: 'rewrapDataKey' });
      return inner.rewrapDataKey(key, purpose);
    },
    check: () => {
      calls.inc({ operation: 'check' });
      return inner.check();
    },
    close: () => inner.close(),
  };
}
