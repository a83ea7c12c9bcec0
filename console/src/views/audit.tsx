import { formatDistanceToNowStrict, formatISO } from 'date-fns';
import { useLocation } from 'preact-iso';
import { useEffect, useState } from 'preact/hooks';
import type { AuditRowJson } from '../../../lib/audit/audit-row.js';
import { api, apiRaw, describeError, isMissingRoute } from '../api.js';
import { pickedTokens } from '../handoff.js';
import { session } from '../session.js';
import { ErrorAlert } from './error-alert.js';
import { TableHead } from './table-head.js';

/**
 * A row of GET /audit: the audit-row schema's JSON form (lib/audit/audit-row.ts). A type-only
 * import: nothing server-side is bundled.
 */
export type AuditEntry = AuditRowJson;

/** GET /audit/verify. */
export interface Verification {
  ok: boolean;
  checked: number;
  first_broken_seq?: number;
  reason?: string;
  head?: { seq: number; hash: string };
  checkpoint?: { seq: number; time?: string; key_id?: string; signature_ok: boolean } | null;
  uncovered?: { from_seq: number; to_seq: number; rows: number; own_reads: number } | null;
}

interface Filters {
  actor: string;
  token: string;
  action: string;
  outcome: string;
  from: string;
  to: string;
}

const EMPTY: Filters = { actor: '', token: '', action: '', outcome: '', from: '', to: '' };
const FILTER_NAMES: Record<keyof Filters, string> = { actor: 'actor', token: 'token', action: 'action', outcome: 'outcome', from: 'from', to: 'to' };

/** The filters in effect, as `name = value` pairs (empty when the whole log is shown). */
function activeFilters(filters: Filters): [string, string][] {
  return (Object.keys(filters) as (keyof Filters)[]).filter((name) => filters[name].trim() !== '').map((name) => [FILTER_NAMES[name], filters[name].trim()]);
}
const ACTIONS = [
  'reveal',
  'reveal.request',
  'approval.approve',
  'approval.deny',
  'reveal.collect',
  'reveal.expire',
  'reveal.break_glass',
  'erase',
  'erase.preview',
  'tokenize',
  'audit_read',
  'audit_verify',
  'audit_export',
  'unknown',
];
const OUTCOMES = ['allowed', 'partial', 'pending', 'denied', 'expired', 'invalid', 'unauthenticated', 'rate_limited', 'failed'];
const PAGE_SIZE = 25;

function queryOf(filters: Filters, cursor: string | undefined): string {
  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  for (const name of ['actor', 'token', 'action', 'outcome'] as const) if (filters[name].trim() !== '') params.set(name, filters[name].trim());
  // datetime-local has no zone: it means the browser's local time.
  if (filters.from !== '') params.set('from', formatISO(new Date(filters.from)));
  if (filters.to !== '') params.set('to', formatISO(new Date(filters.to)));
  if (cursor !== undefined) params.set('cursor', cursor);
  return params.toString();
}

export function AuditView() {
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);
  // Cursors of the pages before the current one: "Newer" pops, "Older" pushes.
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const [page, setPage] = useState<{ entries: AuditEntry[]; next_cursor?: string } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [selected, setSelected] = useState<AuditEntry | null>(null);
  const [verification, setVerification] = useState<Verification | null>(null);
  const [verifyError, setVerifyError] = useState<string | null>(null);
  const cursor = cursors[cursors.length - 1];

  useEffect(() => {
    let live = true;
    setError(null);
    api<{ entries: AuditEntry[]; next_cursor?: string }>('GET', `/audit?${queryOf(filters, cursor)}`)
      .then((response) => live && setPage(response.body))
      .catch((caught: unknown) => live && setError(describeError(caught)));
    return () => {
      live = false;
    };
  }, [filters, cursor]);

  // Incremental by default (the server re-checks only rows new since its last run); full re-reads the whole log.
  const verify = (full = false) => {
    setVerifyError(null);
    setVerification(null);
    api<Verification>('GET', full ? '/audit/verify?full=true' : '/audit/verify')
      .then((response) => setVerification(response.body))
      .catch((caught: unknown) => setVerifyError(describeError(caught)));
  };
  useEffect(() => verify(), []);

  const coveredUpTo = verification?.checkpoint?.signature_ok === true ? verification.checkpoint.seq : undefined;
  const active = activeFilters(filters);
  const clearFilters = () => {
    setDraft(EMPTY);
    setFilters(EMPTY);
    setCursors([undefined]);
  };

  return (
    <div class="audit">
      <h1>Audit log</h1>
      <VerificationPanel verification={verification} error={verifyError} onVerify={verify} />
      <form
        class="filters"
        aria-label="Filter the audit log"
        onSubmit={(event) => {
          event.preventDefault();
          setSelected(null);
          setCursors([undefined]);
          setFilters(draft);
        }}
      >
        <label>
          Actor
          <input name="actor" value={draft.actor} onInput={(e) => setDraft({ ...draft, actor: e.currentTarget.value })} autoComplete="off" />
        </label>
        <label>
          Token
          <input name="token" value={draft.token} onInput={(e) => setDraft({ ...draft, token: e.currentTarget.value })} autoComplete="off" spellcheck={false} />
        </label>
        <label>
          Action
          <select name="action" value={draft.action} onChange={(e) => setDraft({ ...draft, action: e.currentTarget.value })}>
            <option value="">any</option>
            {ACTIONS.map((action) => (
              <option key={action} value={action}>
                {action}
              </option>
            ))}
          </select>
        </label>
        <label>
          Outcome
          <select name="outcome" value={draft.outcome} onChange={(e) => setDraft({ ...draft, outcome: e.currentTarget.value })}>
            <option value="">any</option>
            {OUTCOMES.map((outcome) => (
              <option key={outcome} value={outcome}>
                {outcome}
              </option>
            ))}
          </select>
        </label>
        <label>
          From
          <input name="from" type="datetime-local" value={draft.from} onInput={(e) => setDraft({ ...draft, from: e.currentTarget.value })} />
        </label>
        <label>
          To
          <input name="to" type="datetime-local" value={draft.to} onInput={(e) => setDraft({ ...draft, to: e.currentTarget.value })} />
        </label>
        <div class="actions">
          <button type="submit" class="primary">
            Search
          </button>
          <button type="button" onClick={clearFilters}>
            Clear
          </button>
          <ExportButton />
        </div>
      </form>
      {active.length === 0 ? null : (
        <p role="status" class="notice filter-active" data-testid="filter-active">
          <strong>Filter active:</strong> {active.map(([name, value]) => `${name} = ${value}`).join(', ')}. Only matching entries are shown.{' '}
          <button type="button" onClick={clearFilters}>
            Show all entries
          </button>
        </p>
      )}
      <ErrorAlert error={error} />
      <div class="split">
        <div class="table-wrap">
          <table>
            <caption>
              {active.length === 0 ? 'Audit entries' : 'Audit entries matching the filter'}, newest first{cursors.length > 1 ? ` (page ${cursors.length})` : ''}
            </caption>
            <TableHead columns={['Seq', 'Time', 'Actor', 'Action', 'Outcome', 'Tokens', 'Ticket', 'Signed']} />
            <tbody>
              {page?.entries.length === 0 ? (
                <tr>
                  <td colSpan={8}>No entries match.</td>
                </tr>
              ) : null}
              {page?.entries.map((entry) => (
                <tr
                  key={entry.seq}
                  class={selected?.seq === entry.seq ? 'selected' : undefined}
                  tabIndex={0}
                  aria-selected={selected?.seq === entry.seq}
                  onClick={() => setSelected(entry)}
                  onKeyDown={(event) => {
                    if (event.key === 'Enter' || event.key === ' ') {
                      event.preventDefault();
                      setSelected(entry);
                    }
                  }}
                  data-seq={entry.seq}
                >
                  <td>{entry.seq}</td>
                  <td title={entry.occurred_at}>{new Date(entry.occurred_at).toLocaleString()}</td>
                  <td>{entry.actor ?? '—'}</td>
                  <td>{entry.action}</td>
                  <td>
                    <span class={`outcome ${entry.outcome}`}>{entry.outcome}</span>
                  </td>
                  <td>{entry.tokens.length}</td>
                  <td>{entry.ticket ?? ''}</td>
                  <td>{coverage(entry.seq, coveredUpTo, verification)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <div class="pager">
            <button type="button" disabled={cursors.length <= 1} onClick={() => setCursors(cursors.slice(0, -1))}>
              Newer
            </button>
            <button type="button" disabled={page?.next_cursor === undefined} onClick={() => page?.next_cursor !== undefined && setCursors([...cursors, page.next_cursor])}>
              Older
            </button>
          </div>
        </div>
        {selected === null ? null : <EntryDetail entry={selected} onClose={() => setSelected(null)} />}
      </div>
    </div>
  );
}

function coverage(seq: number, coveredUpTo: number | undefined, verification: Verification | null) {
  if (verification === null || verification.checkpoint === undefined) return <span class="muted">–</span>;
  if (coveredUpTo !== undefined && seq <= coveredUpTo) return <span class="badge ok">signed</span>;
  return <span class="badge warn">not yet</span>;
}

function VerificationPanel({
  verification,
  error,
  onVerify,
}: {
  verification: Verification | null;
  error: string | null;
  onVerify: (full: boolean) => void;
}) {
  let tone = 'pending';
  let headline = 'Verifying the audit log…';
  const details: string[] = [];
  if (error !== null) {
    tone = 'broken';
    headline = `The audit log could not be verified: ${error}`;
  } else if (verification !== null) {
    const checkpoint = verification.checkpoint;
    const uncovered = verification.uncovered ?? null;
    if (!verification.ok) {
      tone = 'broken';
      headline = `Audit log BROKEN at entry ${verification.first_broken_seq ?? '?'}`;
      if (verification.reason !== undefined) details.push(verification.reason);
      details.push('Rows were edited, deleted or reordered after they were written. Do not trust this log past that entry.');
    } else if (checkpoint === undefined) {
      tone = 'partial';
      headline = `Hash chain intact (${verification.checked} entries), not verified against a signed checkpoint`;
      details.push('This server does not publish signed checkpoints: whoever can write the database could rewrite the chain.');
    } else if (checkpoint === null || !checkpoint.signature_ok) {
      tone = checkpoint === null ? 'partial' : 'broken';
      headline =
        checkpoint === null
          ? `Hash chain intact (${verification.checked} entries); no signed checkpoint yet`
          : 'The latest checkpoint signature does NOT verify';
    } else {
      // Green only when every row is proven by a signature the database owner cannot forge;
      // amber while some rows are still covered by the hash chain alone.
      tone = uncovered === null ? 'verified' : 'partial';
      headline =
        uncovered === null
          ? `Verified against the signed checkpoint at entry ${checkpoint.seq}; chain intact through entry ${verification.head?.seq ?? checkpoint.seq}`
          : `Verified against the signed checkpoint at entry ${checkpoint.seq}; entries ${uncovered.from_seq} to ${uncovered.to_seq} are not yet covered by one`;
      details.push(
        `Checkpoint ${checkpoint.time === undefined ? '' : `of ${new Date(checkpoint.time).toLocaleString()} `}signed with key ${checkpoint.key_id ?? '?'}.`,
      );
    }
    if (uncovered !== null && verification.ok) {
      const { rows, own_reads: ownReads } = uncovered;
      details.push(
        `${rows} ${rows === 1 ? 'entry is' : 'entries are'} not yet covered by a signed checkpoint (hash chain only until the next one); ` +
          `${ownReads} of them ${ownReads === 1 ? 'is' : 'are'} your own reads of this log (opening and verifying it writes audit entries).`,
      );
    }
  }
  return (
    <section class={`verification ${tone}`} aria-live="polite" data-testid="verification" data-state={tone}>
      <h2>{headline}</h2>
      {details.map((line) => (
        <p key={line}>{line}</p>
      ))}
      {verification === null ? null : <p>{verification.checked} entries checked in this run.</p>}
      <div class="actions">
        <button type="button" onClick={() => onVerify(false)}>
          Verify again
        </button>
        <button type="button" onClick={() => onVerify(true)}>
          Re-verify the whole log
        </button>
      </div>
    </section>
  );
}

function EntryDetail({ entry, onClose }: { entry: AuditEntry; onClose: () => void }) {
  const { route } = useLocation();
  const canReveal = Object.keys(session.value?.permissions.reveal ?? {}).length > 0;
  const rows: [string, string][] = [
    ['Sequence', String(entry.seq)],
    ['Time', `${entry.occurred_at} (${formatDistanceToNowStrict(new Date(entry.occurred_at), { addSuffix: true })})`],
    ['Action', entry.action],
    ['Outcome', entry.outcome],
    ['Reason', entry.reason ?? '—'],
    ['Actor', entry.actor ?? '—'],
    ['Roles', entry.roles.join(', ') || '—'],
    ['Purpose', entry.purpose ?? '—'],
    ['Ticket', entry.ticket ?? '—'],
    ['Field counts', Object.entries(entry.field_counts).map(([field, count]) => `${field}: ${count}`).join(', ') || '—'],
    ['Client address', entry.client_address ?? '—'],
    ['Request id', entry.request_id ?? '—'],
    ['Previous hash', entry.prev_hash ?? '—'],
    ['Hash', entry.hash],
  ];
  return (
    <aside class="detail" aria-labelledby="detail-heading">
      <h2 id="detail-heading">Entry {entry.seq}</h2>
      <dl>
        {rows.map(([name, value]) => (
          <div key={name}>
            <dt>{name}</dt>
            <dd>{value}</dd>
          </div>
        ))}
      </dl>
      <h3>Tokens ({entry.tokens.length})</h3>
      <ul class="tokens">
        {entry.tokens.map((token) => (
          <li key={token}>
            <code>{token}</code>
          </li>
        ))}
      </ul>
      <div class="actions">
        {canReveal && entry.tokens.length > 0 ? (
          <button
            type="button"
            onClick={() => {
              pickedTokens.value = entry.tokens;
              route('/console/reveal');
            }}
          >
            Reveal these tokens…
          </button>
        ) : null}
        <button type="button" onClick={onClose}>
          Close
        </button>
      </div>
    </aside>
  );
}

function ExportButton() {
  const [message, setMessage] = useState<string | null>(null);
  const run = async () => {
    setMessage('Exporting…');
    try {
      const response = await apiRaw('/audit/export?after_seq=0');
      const blob = await response.blob();
      const url = URL.createObjectURL(blob);
      const link = document.createElement('a');
      link.href = url;
      link.download = `tokenvault-audit-${new Date().toISOString().replaceAll(':', '-')}.ndjson`;
      link.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      const lines = (await blob.text()).split('\n').filter((line) => line.length > 0);
      const rows = lines.filter((line) => line.includes('"type":"row"')).length;
      setMessage(`Exported ${rows} rows and ${lines.length - rows} checkpoints.`);
    } catch (caught) {
      setMessage(isMissingRoute(caught) ? 'Export is not available on this server.' : `Export failed: ${describeError(caught)}`);
    }
  };
  return (
    <>
      <button type="button" onClick={() => void run()}>
        Export (NDJSON)
      </button>
      {message === null ? null : (
        <span role="status" class="muted">
          {message}
        </span>
      )}
    </>
  );
}
