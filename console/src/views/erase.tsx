import { useState } from 'preact/hooks';
import { api, describeError } from '../api.js';
import { fieldOf, parseTokenList } from '../handoff.js';
import { session } from '../session.js';
import { ErrorAlert } from './error-alert.js';
import { TableHead } from './table-head.js';
import { RequestFields } from './request-fields.js';

type EraseResult = { token: string; status: 'erased' } | { token: string; error: string };

export function EraseView() {
  const [tokens, setTokens] = useState('');
  const [purpose, setPurpose] = useState('');
  const [ticket, setTicket] = useState('');
  const [review, setReview] = useState<string[] | null>(null);
  const [confirmed, setConfirmed] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [results, setResults] = useState<EraseResult[] | null>(null);
  const allowed = session.value?.permissions.erase ?? [];

  const erase = async () => {
    if (review === null) return;
    setBusy(true);
    setError(null);
    try {
      const response = await api<{ results: EraseResult[] }>('POST', '/erase', {
        tokens: review,
        purpose,
        ...(ticket.trim() === '' ? {} : { ticket: ticket.trim() }),
      });
      setResults(response.body.results);
      setReview(null);
      setConfirmed(false);
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
            setResults(null);
            setReview(parseTokenList(tokens));
          }}
        >
          <RequestFields tokensLabel="Tokens to erase (one per line)" tokens={tokens} setTokens={setTokens} purpose={purpose} setPurpose={setPurpose} ticket={ticket} setTicket={setTicket} />
          <div class="actions">
            <button type="submit" class="primary">
              Review
            </button>
          </div>
        </form>
      ) : (
        <section class="confirm" aria-labelledby="confirm-heading">
          <h2 id="confirm-heading">Confirm: these values will be shredded permanently</h2>
          <table>
            <TableHead columns={['Token', 'Field', 'Will be']} />
            <tbody>
              {review.map((token) => {
                const field = fieldOf(token);
                return (
                  <tr key={token}>
                    <td>
                      <code>{token}</code>
                    </td>
                    <td>{field ?? 'not a token'}</td>
                    <td>{field === undefined ? 'refused' : allowed.includes(field) ? 'erased' : 'refused (not allowed)'}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          <p>
            Purpose: {purpose}
            {ticket.trim() === '' ? '' : ` — ticket ${ticket.trim()}`}
          </p>
          <label class="checkbox">
            <input type="checkbox" checked={confirmed} onChange={(e) => setConfirmed(e.currentTarget.checked)} />I understand that erased values
            cannot be recovered.
          </label>
          <div class="actions">
            <button type="button" class="danger" disabled={!confirmed || busy} onClick={() => void erase()}>
              Erase {review.length} value{review.length === 1 ? '' : 's'} permanently
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
