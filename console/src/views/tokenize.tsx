import { useState } from 'preact/hooks';
import { api, describeError } from '../api.js';
import { session } from '../session.js';
import { ErrorAlert } from './error-alert.js';
import { TableHead } from './table-head.js';

type TokenizeResult = { index: number; token: string } | { index: number; error: string };

/** POST /tokenize takes at most this many values per request. */
const MAX_VALUES = 100;

/**
 * Value → token, for analysts: the token of an IP or device id they already know, to find its
 * rows in user_logins. Nothing is revealed; the request is audited (tokens only, never values).
 */
export function TokenizeView() {
  const fields = session.value?.permissions.tokenize ?? [];
  const [field, setField] = useState(fields[0] ?? 'ip');
  const [values, setValues] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [results, setResults] = useState<{ field: string; rows: { value: string; result: TokenizeResult | undefined }[] } | null>(null);

  const submit = async () => {
    setError(null);
    const list = [...new Set(values.split(/[\s,;]+/).filter((value) => value.length > 0))];
    if (list.length === 0) {
      setError('Enter at least one value, one per line.');
      return;
    }
    if (list.length > MAX_VALUES) {
      setError(`At most ${MAX_VALUES} values per request; you entered ${list.length}.`);
      return;
    }
    setBusy(true);
    try {
      const response = await api<{ key_version: number; results: TokenizeResult[] }>('POST', '/tokenize', { field, values: list });
      const byIndex = new Map(response.body.results.map((result) => [result.index, result]));
      setResults({ field, rows: list.map((value, index) => ({ value, result: byIndex.get(index) })) });
    } catch (caught) {
      setError(describeError(caught));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="tokenize">
      <h1>Tokenize</h1>
      <p class="muted">
        The token of a value you already know, to find its rows in user_logins (<code>WHERE masked_ip = '…'</code> or{' '}
        <code>masked_device_id</code>). Nothing is revealed; each request is written to the audit log with the tokens, never the values.
      </p>
      <form
        class="stack"
        onSubmit={(event) => {
          event.preventDefault();
          void submit();
        }}
      >
        <label>
          Field
          <select name="field" value={field} onChange={(event) => setField(event.currentTarget.value)}>
            {fields.map((name) => (
              <option key={name} value={name}>
                {name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Values (one per line)
          <textarea name="values" rows={5} value={values} onInput={(event) => setValues(event.currentTarget.value)} required spellcheck={false} />
        </label>
        <div class="actions">
          <button type="submit" class="primary" disabled={busy}>
            Find tokens
          </button>
        </div>
      </form>
      <ErrorAlert error={error} />
      {results === null ? null : (
        <section class="results" aria-labelledby="tokenize-results">
          <h2 id="tokenize-results">Tokens ({results.field})</h2>
          <table>
            <TableHead columns={['Value', 'Token']} />
            <tbody>
              {results.rows.map(({ value, result }) => (
                <tr key={value}>
                  <td>
                    <code>{value}</code>
                  </td>
                  <td>
                    {result !== undefined && 'token' in result ? (
                      <code class="token" data-testid="token">
                        {result.token}
                      </code>
                    ) : (
                      <span class="badge bad">not a valid {results.field}</span>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
    </div>
  );
}
