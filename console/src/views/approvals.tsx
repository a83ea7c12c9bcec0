import { formatDistanceToNowStrict } from 'date-fns';
import { useEffect, useState } from 'preact/hooks';
import { api, describeError, isMissingRoute } from '../api.js';
import { ErrorAlert } from './error-alert.js';

export interface Approval {
  id: string;
  requester: string;
  purpose: string;
  ticket: string | null;
  field_counts?: Record<string, number>;
  values?: number;
  approvals?: unknown[];
  approvals_required?: number;
  created_at?: string;
  expires_at?: string;
  age_seconds?: number;
}

const REFRESH_MS = 5_000;
/** POST /approvals/{id} refuses a shorter reason (400). */
const MIN_REASON = 3;

/** The servers' list answer: an array, or an object holding one. */
function listOf(body: unknown): Approval[] {
  if (Array.isArray(body)) return body as Approval[];
  const record = (body ?? {}) as Record<string, unknown>;
  const list = record.approvals ?? record.pending ?? record.requests ?? record.items;
  return Array.isArray(list) ? (list as Approval[]) : [];
}

export function ApprovalsView() {
  const [approvals, setApprovals] = useState<Approval[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [unavailable, setUnavailable] = useState(false);
  const [refreshedAt, setRefreshedAt] = useState<Date | null>(null);
  const [done, setDone] = useState<string | null>(null);

  const load = async () => {
    try {
      const response = await api<unknown>('GET', '/approvals');
      setApprovals(listOf(response.body));
      setRefreshedAt(new Date());
      setError(null);
    } catch (caught) {
      if (isMissingRoute(caught)) setUnavailable(true);
      else setError(describeError(caught));
    }
  };

  useEffect(() => {
    void load();
    const timer = setInterval(() => void load(), REFRESH_MS);
    return () => clearInterval(timer);
  }, []);

  if (unavailable) {
    return (
      <div>
        <h1>Approvals</h1>
        <p role="status">Approvals are not available on this server.</p>
      </div>
    );
  }
  return (
    <div class="approvals">
      <h1>Pending reveal requests</h1>
      <p class="muted" role="status">
        Refreshes every {REFRESH_MS / 1000} s{refreshedAt === null ? '' : `; last at ${refreshedAt.toLocaleTimeString()}`}.
      </p>
      {done === null ? null : (
        <p role="status" class="notice">
          {done}
        </p>
      )}
      <ErrorAlert error={error} />
      {approvals?.length === 0 ? <p>Nothing is waiting for approval.</p> : null}
      <ul class="cards">
        {approvals?.map((approval) => (
          <ApprovalCard
            key={approval.id}
            approval={approval}
            onDecided={(message) => {
              setDone(message);
              void load();
            }}
          />
        ))}
      </ul>
    </div>
  );
}

function ApprovalCard({ approval, onDecided }: { approval: Approval; onDecided: (message: string) => void }) {
  const [reason, setReason] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const reasonId = `reason-${approval.id}`;
  const hintId = `reason-hint-${approval.id}`;
  const tooShort = reason.trim().length < MIN_REASON;
  const created = approval.created_at === undefined ? undefined : new Date(approval.created_at);
  const age =
    created !== undefined
      ? formatDistanceToNowStrict(created, { addSuffix: true })
      : approval.age_seconds !== undefined
        ? `${Math.round(approval.age_seconds)} s ago`
        : '—';

  const decide = async (decision: 'approve' | 'deny') => {
    setBusy(true);
    setError(null);
    try {
      await api('POST', `/approvals/${encodeURIComponent(approval.id)}`, { decision, reason });
      onDecided(`${decision === 'approve' ? 'Approved' : 'Denied'} the request of ${approval.requester}.`);
    } catch (caught) {
      setError(describeError(caught));
    } finally {
      setBusy(false);
    }
  };

  return (
    <li class="card" data-testid="approval">
      <dl class="inline">
        <div>
          <dt>Requester</dt>
          <dd>{approval.requester}</dd>
        </div>
        <div>
          <dt>Purpose</dt>
          <dd>{approval.purpose}</dd>
        </div>
        <div>
          <dt>Ticket</dt>
          <dd>{approval.ticket ?? '—'}</dd>
        </div>
        <div>
          <dt>Values</dt>
          <dd>
            {Object.entries(approval.field_counts ?? {})
              .map(([field, count]) => `${count} ${field}`)
              .join(', ') || '—'}
          </dd>
        </div>
        <div>
          <dt>Requested</dt>
          <dd>{age}</dd>
        </div>
        {approval.approvals_required === undefined ? null : (
          <div>
            <dt>Approvals</dt>
            <dd>
              {approval.approvals?.length ?? 0} of {approval.approvals_required}
            </dd>
          </div>
        )}
      </dl>
      <form
        onSubmit={(event) => {
          event.preventDefault();
        }}
      >
        <label for={reasonId}>Reason for your decision</label>
        <input id={reasonId} value={reason} onInput={(e) => setReason(e.currentTarget.value)} required minLength={3} autoComplete="off" aria-describedby={hintId} />
        <p id={hintId} class="muted" data-testid="decision-hint">
          {tooShort ? `Approve and Deny unlock once you give a reason of at least ${MIN_REASON} characters; it is written to the audit log.` : 'Your reason is written to the audit log.'}
        </p>
        <div class="actions">
          <button type="button" class="primary" disabled={busy || tooShort} aria-describedby={hintId} onClick={() => void decide('approve')}>
            Approve
          </button>
          <button type="button" class="danger" disabled={busy || tooShort} aria-describedby={hintId} onClick={() => void decide('deny')}>
            Deny
          </button>
        </div>
      </form>
      <ErrorAlert error={error} />
    </li>
  );
}
