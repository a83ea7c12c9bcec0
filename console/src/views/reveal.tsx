import { formatDistanceToNowStrict } from 'date-fns';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, describeError } from '../api.js';
import { fieldOf, parseTokenList, pickedTokens } from '../handoff.js';
import { session, settings } from '../session.js';
import { refreshMe } from '../sign-in.js';

type RevealResult =
  | { token: string; field: string; value: string; redaction: 'none' | 'masked' }
  | { token: string; error: string };

interface PendingRequest {
  requestId: string;
  expiresAt: string | undefined;
  tokens: number;
  purpose: string;
  status: string;
}

const POLL_MS = 5_000;

export function RevealView() {
  const [tokens, setTokens] = useState(() => pickedTokens.value.join('\n'));
  const [purpose, setPurpose] = useState('');
  const [ticket, setTicket] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [results, setResults] = useState<RevealResult[] | null>(null);
  const [clearAt, setClearAt] = useState<number | null>(null);
  const [pending, setPending] = useState<PendingRequest[]>([]);
  const grants = session.value?.permissions.reveal ?? {};
  const clearSeconds = settings.value?.revealClearSeconds ?? 60;

  useEffect(() => {
    pickedTokens.value = [];
  }, []);

  const show = (next: RevealResult[]) => {
    setResults(next);
    setClearAt(Date.now() + clearSeconds * 1000);
  };

  const submit = async () => {
    setBusy(true);
    setError(null);
    const list = parseTokenList(tokens);
    try {
      const response = await api<{ results?: RevealResult[]; request_id?: string; status?: string; expires_at?: string }>('POST', '/reveal', {
        tokens: list,
        purpose,
        ...(ticket.trim() === '' ? {} : { ticket: ticket.trim() }),
      });
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
        <label>
          Tokens (one per line)
          <textarea name="tokens" rows={5} value={tokens} onInput={(e) => setTokens(e.currentTarget.value)} required spellcheck={false} />
        </label>
        <label>
          Purpose
          <input name="purpose" value={purpose} onInput={(e) => setPurpose(e.currentTarget.value)} required minLength={10} maxLength={500} autoComplete="off" />
        </label>
        <label>
          Ticket
          <input name="ticket" value={ticket} onInput={(e) => setTicket(e.currentTarget.value)} maxLength={128} autoComplete="off" />
        </label>
        <div class="actions">
          <button type="submit" class="primary" disabled={busy}>
            Reveal
          </button>
        </div>
      </form>
      {error === null ? null : (
        <p role="alert" class="error">
          {error}
        </p>
      )}
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
  if (me == null) return null;
  const budget = me.budgets ?? me.budget ?? me.remaining_budget ?? me.remaining;
  if (budget === undefined) return null;
  return (
    <section class="budget" aria-label="Remaining reveal budget" data-testid="budget">
      <h2>Remaining budget</h2>
      <BudgetValue value={budget} />
    </section>
  );
}

function BudgetValue({ value }: { value: unknown }) {
  if (value === null || typeof value !== 'object') return <span>{String(value)}</span>;
  return (
    <dl class="inline">
      {Object.entries(value as Record<string, unknown>).map(([name, item]) => (
        <div key={name}>
          <dt>{name}</dt>
          <dd>{item !== null && typeof item === 'object' ? <BudgetValue value={item} /> : String(item)}</dd>
        </div>
      ))}
    </dl>
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
        <thead>
          <tr>
            <th scope="col">Token</th>
            <th scope="col">Field</th>
            <th scope="col">Value</th>
          </tr>
        </thead>
        <tbody>
          {results.map((result) => (
            <tr key={result.token}>
              <td>
                <code class="token">{result.token}</code>
              </td>
              <td>{'field' in result ? result.field : (fieldOf(result.token) ?? '?')}</td>
              <td>
                {'value' in result ? (
                  <>
                    <span class="value" data-testid="value">
                      {result.value}
                    </span>
                    {result.redaction === 'masked' ? <span class="badge warn">masked</span> : null}
                  </>
                ) : (
                  <span class="badge bad">{result.error.replaceAll('_', ' ')}</span>
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
      for (const request of pending.filter((item) => item.status === 'pending_approval' || item.status === 'approved')) {
        try {
          const response = await api<{ status: string; results?: RevealResult[] }>('GET', `/reveal-requests/${encodeURIComponent(request.requestId)}`);
          if (response.body.results !== undefined) onResults(response.body.results);
          const status = response.body.results !== undefined ? 'collected' : response.body.status;
          setPending((current) => current.map((item) => (item.requestId === request.requestId ? { ...item, status } : item)));
        } catch (caught) {
          const status = caught instanceof ApiError ? caught.code : 'unreachable';
          setPending((current) => current.map((item) => (item.requestId === request.requestId ? { ...item, status } : item)));
        }
      }
    };
    const timer = setInterval(() => void poll(), POLL_MS);
    return () => clearInterval(timer);
  }, [pending]);
  return (
    <section aria-labelledby="pending-heading" class="pending">
      <h2 id="pending-heading">Requests awaiting approval</h2>
      <table>
        <thead>
          <tr>
            <th scope="col">Request</th>
            <th scope="col">Tokens</th>
            <th scope="col">Purpose</th>
            <th scope="col">Status</th>
            <th scope="col">Expires</th>
          </tr>
        </thead>
        <tbody>
          {pending.map((request) => (
            <tr key={request.requestId} data-testid="pending-request">
              <td>
                <code>{request.requestId}</code>
              </td>
              <td>{request.tokens}</td>
              <td>{request.purpose}</td>
              <td data-testid="pending-status">{request.status.replaceAll('_', ' ')}</td>
              <td>{request.expiresAt === undefined ? '—' : formatDistanceToNowStrict(new Date(request.expiresAt), { addSuffix: true })}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
