import { formatDistanceToNowStrict } from 'date-fns';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, describeError } from '../api.js';
import { fieldOf, notTokensMessage, parseTokenList, pickedTokens } from '../handoff.js';
import { session, settings } from '../session.js';
import { refreshMe } from '../sign-in.js';
import { ErrorAlert } from './error-alert.js';
import { TableHead } from './table-head.js';
import { RequestFields } from './request-fields.js';

type RevealResult =
  | { token: string; field: string; value: string; redaction: 'none' | 'masked' }
  | { token: string; error: string; hint?: string };

interface PendingRequest {
  requestId: string;
  expiresAt: string | undefined;
  tokens: number;
  purpose: string;
  status: string;
}

const POLL_MS = 3_000;
const STATUS_LABELS: Record<string, string> = {
  pending_approval: 'waiting for approval',
  pending: 'waiting for approval',
  approved: 'approved, collecting',
  collected: 'collected (shown below)',
  request_denied: 'denied',
  request_expired: 'expired',
  already_collected: 'already collected',
  budget_exhausted: 'approved, but your budget is used up',
};

/** Request states that can still turn into values; every other state is final. */
const WAITING = ['pending_approval', 'pending', 'approved'];
const isWaiting = (request: PendingRequest) => WAITING.includes(request.status);

export function RevealView() {
  const [tokens, setTokens] = useState(() => pickedTokens.value.join('\n'));
  const [purpose, setPurpose] = useState('');
  const [ticket, setTicket] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [results, setResults] = useState<RevealResult[] | null>(null);
  const [clearAt, setClearAt] = useState<number | null>(null);
  const [pending, setPending] = useState<PendingRequest[]>(() =>
    (session.value?.me.requests ?? []).map((request) => ({
      requestId: request.id,
      expiresAt: request.expires_at,
      tokens: Object.values(request.field_counts).reduce((sum, count) => sum + count, 0),
      purpose: request.purpose,
      status: request.status,
    })),
  );
  const [breakGlass, setBreakGlass] = useState(false);
  const canBreakGlass = session.value?.me.break_glass === true;
  const grants = session.value?.permissions.reveal ?? {};
  const clearSeconds = settings.value?.reveal_clear_seconds ?? 60;

  useEffect(() => {
    pickedTokens.value = [];
  }, []);

  const show = (next: RevealResult[]) => {
    setResults(next);
    setClearAt(Date.now() + clearSeconds * 1000);
  };

  const submit = async () => {
    setError(null);
    const { tokens: list, others } = parseTokenList(tokens);
    if (others.length > 0) {
      setError(notTokensMessage(others));
      return;
    }
    setBusy(true);
    try {
      const response = await api<{ results?: RevealResult[]; request_id?: string; status?: string; expires_at?: string }>('POST', '/reveal', {
        tokens: list,
        purpose,
        ...(ticket.trim() === '' ? {} : { ticket: ticket.trim() }),
        ...(breakGlass ? { break_glass: true } : {}),
      });
      setBreakGlass(false);
      // Done with this request: the next one starts from an empty form.
      setTokens('');
      setPurpose('');
      setTicket('');
      if (response.status === 202 && response.body.request_id !== undefined) {
        setPending((current) => [
          ...current,
          { requestId: response.body.request_id as string, expiresAt: response.body.expires_at, tokens: list.length, purpose, status: response.body.status ?? 'pending_approval' },
        ]);
      } else {
        show(response.body.results ?? []);
      }
      void refreshMe();
    } catch (caught) {
      setError(caught instanceof ApiError && caught.code === 'budget_exhausted' ? `Your reveal budget is used up: ${caught.message}` : describeError(caught));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="reveal">
      <h1>Reveal</h1>
      <p class="muted">
        Your roles may reveal:{' '}
        {Object.entries(grants)
          .map(([field, redaction]) => `${field} (${redaction === 'plain' ? 'in full' : 'masked'})`)
          .join(', ')}
        . Every request is written to the audit log with its purpose and ticket.
      </p>
      <Budget />
      <form
        class="stack"
        onSubmit={(event) => {
          event.preventDefault();
          void submit();
        }}
      >
        <RequestFields tokensLabel="Tokens (one per line)" tokens={tokens} setTokens={setTokens} purpose={purpose} setPurpose={setPurpose} ticket={ticket} setTicket={setTicket} />
        {canBreakGlass ? (
          <label class="checkbox">
            <input type="checkbox" checked={breakGlass} onChange={(e) => setBreakGlass(e.currentTarget.checked)} />
            Break glass: skip approval for an emergency (audited as break-glass and alerted on)
          </label>
        ) : null}
        <div class="actions">
          <button type="submit" class="primary" disabled={busy}>
            Reveal
          </button>
        </div>
      </form>
      <ErrorAlert error={error} />
      {pending.length === 0 ? null : <PendingList pending={pending} setPending={setPending} onResults={show} />}
      {results === null ? null : (
        <Results
          results={results}
          clearAt={clearAt}
          onClear={() => {
            setResults(null);
            setClearAt(null);
          }}
        />
      )}
    </div>
  );
}

function Budget() {
  const me = session.value?.me;
  if (me === undefined) return null;
  const standings = [...me.budgets, ...(me.break_glass_budget === null ? [] : [me.break_glass_budget])];
  return (
    <section class="budget" aria-labelledby="budget-heading" data-testid="budget">
      <h2 id="budget-heading">Remaining budget</h2>
      {standings.length === 0 ? (
        <p>Your roles have no reveal budget limit.</p>
      ) : (
        <dl class="inline">
          {standings.map((standing) => (
            <div key={standing.budget}>
              <dt>{standing.budget.replace('_', ' ')}</dt>
              <dd>
                {standing.remaining} of {standing.limit} left (resets {formatDistanceToNowStrict(new Date(standing.reset_at), { addSuffix: true })})
              </dd>
            </div>
          ))}
        </dl>
      )}
      <p class="muted">
        Approval:{' '}
        {Object.entries(me.fields)
          .filter(([, grant]) => grant.reveal !== null)
          .map(([field, grant]) => `${field} ${grant.approval}`)
          .join(', ')}
        .
      </p>
    </section>
  );
}

function Results({ results, clearAt, onClear }: { results: RevealResult[]; clearAt: number | null; onClear: () => void }) {
  const [now, setNow] = useState(Date.now());
  const onClearRef = useRef(onClear);
  onClearRef.current = onClear;
  useEffect(() => {
    const timer = setInterval(() => {
      setNow(Date.now());
      if (clearAt !== null && Date.now() >= clearAt) onClearRef.current();
    }, 500);
    return () => clearInterval(timer);
  }, [clearAt]);
  const left = clearAt === null ? 0 : Math.max(0, Math.ceil((clearAt - now) / 1000));
  return (
    <section class="results" aria-labelledby="results-heading">
      <h2 id="results-heading">Results</h2>
      <p role="status" class="muted" data-testid="clear-countdown">
        Cleared from the screen in {left} s.{' '}
        <button type="button" onClick={onClear}>
          Clear now
        </button>
      </p>
      <table>
        <TableHead columns={['Token', 'Field', 'Value']} />
        <tbody>
          {results.map((result) => (
            <tr key={result.token}>
              <td>
                <code class="token">{result.token}</code>
              </td>
              <td>{'field' in result ? result.field : (fieldOf(result.token) ?? '—')}</td>
              <td>
                {'value' in result ? (
                  <>
                    <span class="value" data-testid="value">
                      {result.value}
                    </span>
                    {result.redaction === 'masked' ? <span class="badge warn">masked</span> : null}
                  </>
                ) : (
                  <>
                    <span class="badge bad">{result.error.replaceAll('_', ' ')}</span>
                    {result.hint === undefined ? null : <span class="muted hint">{result.hint}</span>}
                  </>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function PendingList({
  pending,
  setPending,
  onResults,
}: {
  pending: PendingRequest[];
  setPending: (update: (current: PendingRequest[]) => PendingRequest[]) => void;
  onResults: (results: RevealResult[]) => void;
}) {
  useEffect(() => {
    const poll = async () => {
      for (const request of pending.filter(isWaiting)) {
        try {
          // Answers `pending` until approved; then reveals the values once (`collected`).
          const response = await api<{ status: string; results?: RevealResult[] }>('GET', `/reveal-requests/${encodeURIComponent(request.requestId)}`);
          if (response.body.status === 'collected') {
            onResults(response.body.results ?? []);
            void refreshMe();
          }
          const status = response.body.status;
          setPending((current) => current.map((item) => (item.requestId === request.requestId ? { ...item, status } : item)));
        } catch (caught) {
          const status = caught instanceof ApiError ? caught.code : 'unreachable';
          setPending((current) => current.map((item) => (item.requestId === request.requestId ? { ...item, status } : item)));
        }
      }
    };
    if (!pending.some(isWaiting)) return undefined;
    const timer = setInterval(() => void poll(), POLL_MS);
    return () => clearInterval(timer);
  }, [pending]);
  const waiting = pending.filter(isWaiting);
  const finished = pending.filter((request) => !isWaiting(request));
  return (
    <>
      {waiting.length === 0 ? null : <RequestTable id="pending" heading="Requests awaiting approval" requests={waiting} />}
      {finished.length === 0 ? null : <RequestTable id="finished" heading="Finished requests" requests={finished} />}
    </>
  );
}

/** Requests still waiting, or finished (collected, denied, expired): one table each, so nothing finished looks pending. */
function RequestTable({ id, heading, requests }: { id: 'pending' | 'finished'; heading: string; requests: PendingRequest[] }) {
  return (
    <section aria-labelledby={`${id}-heading`} class="pending">
      <h2 id={`${id}-heading`}>{heading}</h2>
      <table>
        <TableHead columns={['Request', 'Tokens', 'Purpose', 'Status', id === 'pending' ? 'Expires' : 'Expired']} />
        <tbody>
          {requests.map((request) => (
            <tr key={request.requestId} data-testid={`${id}-request`}>
              <td>
                <code>{request.requestId}</code>
              </td>
              <td>{request.tokens}</td>
              <td>{request.purpose}</td>
              <td data-testid={`${id}-status`}>{STATUS_LABELS[request.status] ?? request.status.replaceAll('_', ' ')}</td>
              <td>{request.expiresAt === undefined ? '—' : formatDistanceToNowStrict(new Date(request.expiresAt), { addSuffix: true })}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
