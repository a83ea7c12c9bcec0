import { useState } from 'preact/hooks';
import { api, describeError } from '../api.js';
import { notTokensMessage, parseTokenList } from '../handoff.js';
import { session } from '../session.js';
import { ErrorAlert } from './error-alert.js';
import { TableHead } from './table-head.js';
import { RequestFields } from './request-fields.js';

type EraseResult = { token: string; status: 'erased' } | { token: string; error: string };

/** POST /erase/preview: what an erasure would do, decided by the vault (nothing changes). */
type PreviewResult = { token: string; field: string; status: 'erasable' } | { token: string; field?: string; error: string };

const WILL_BE: Record<string, string> = {
  erasable: 'erased',
  not_found: 'nothing to erase: not in the vault (already erased, or never stored)',
  forbidden: 'refused: your roles may not erase this field',
  not_a_token: 'refused: not a token',
};

export function EraseView() {
  const [tokens, setTokens] = useState('');
  const [purpose, setPurpose] = useState('');
  const [ticket, setTicket] = useState('');
  const [review, setReview] = useState<PreviewResult[] | null>(null);
  const [confirmed, setConfirmed] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [results, setResults] = useState<EraseResult[] | null>(null);
  const allowed = session.value?.permissions.erase ?? [];
  const request = () => ({ purpose, ...(ticket.trim() === '' ? {} : { ticket: ticket.trim() }) });
  const erasable = (review ?? []).filter((item) => 'status' in item).map((item) => item.token);

  const preview = async () => {
    setResults(null);
    setError(null);
    const { tokens: list, others } = parseTokenList(tokens);
    if (others.length > 0) {
      setError(notTokensMessage(others));
      return;
    }
    setBusy(true);
    try {
      const response = await api<{ results: PreviewResult[] }>('POST', '/erase/preview', { tokens: list, ...request() });
      setReview(response.body.results);
    } catch (caught) {
      setError(describeError(caught));
    } finally {
      setBusy(false);
    }
  };

  const erase = async () => {
    if (erasable.length === 0) return;
    setBusy(true);
    setError(null);
    try {
      const response = await api<{ results: EraseResult[] }>('POST', '/erase', { tokens: erasable, ...request() });
      setResults(response.body.results);
      setReview(null);
      setConfirmed(false);
      // Done: the next erasure starts from an empty form.
      setTokens('');
      setPurpose('');
      setTicket('');
    } catch (caught) {
      setError(describeError(caught));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="erase">
      <h1>Erase (right to erasure)</h1>
      <p class="muted">
        Erasing deletes the only stored copy of each original value (crypto-shredding): the token can never be revealed again. Analytics rows
        keep the token. You may erase: {allowed.join(', ')}.
      </p>
      {review === null ? (
        <form
          class="stack"
          onSubmit={(event) => {
            event.preventDefault();
            void preview();
          }}
        >
          <RequestFields tokensLabel="Tokens to erase (one per line)" tokens={tokens} setTokens={setTokens} purpose={purpose} setPurpose={setPurpose} ticket={ticket} setTicket={setTicket} />
          <div class="actions">
            <button type="submit" class="primary" disabled={busy}>
              Review
            </button>
          </div>
        </form>
      ) : (
        <section class="confirm" aria-labelledby="confirm-heading">
          <h2 id="confirm-heading">Confirm: these values will be shredded permanently</h2>
          <p class="muted">Checked against the vault just now.</p>
          <table>
            <TableHead columns={['Token', 'Field', 'Will be']} />
            <tbody>
              {review.map((item) => (
                <tr key={item.token} data-testid="erase-review">
                  <td>
                    <code>{item.token}</code>
                  </td>
                  <td>{item.field ?? '—'}</td>
                  <td>{'status' in item ? WILL_BE.erasable : (WILL_BE[item.error] ?? item.error.replaceAll('_', ' '))}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <p>
            Purpose: {purpose}
            {ticket.trim() === '' ? '' : ` — ticket ${ticket.trim()}`}
          </p>
          {erasable.length === 0 ? (
            <p role="status" class="notice">
              Nothing here can be erased.
            </p>
          ) : (
            <label class="checkbox">
              <input type="checkbox" checked={confirmed} onChange={(e) => setConfirmed(e.currentTarget.checked)} />I understand that erased values
              cannot be recovered.
            </label>
          )}
          <div class="actions">
            <button type="button" class="danger" disabled={!confirmed || busy || erasable.length === 0} onClick={() => void erase()}>
              Erase {erasable.length} value{erasable.length === 1 ? '' : 's'} permanently
            </button>
            <button
              type="button"
              onClick={() => {
                setReview(null);
                setConfirmed(false);
              }}
            >
              Back
            </button>
          </div>
        </section>
      )}
      <ErrorAlert error={error} />
      {results === null ? null : (
        <section aria-labelledby="erase-results">
          <h2 id="erase-results">Result</h2>
          <ul>
            {results.map((result) => (
              <li key={result.token} data-testid="erase-result">
                <code>{result.token}</code>: {'status' in result ? result.status : result.error.replaceAll('_', ' ')}
              </li>
            ))}
          </ul>
        </section>
      )}
    </div>
  );
}
