import { useState } from 'preact/hooks';
import { describeError } from '../api.js';
import { beginSignIn } from '../oidc.js';
import { endedBecause, settings } from '../session.js';
import { localSignIn } from '../sign-in.js';
import { ErrorAlert } from './error-alert.js';

export function SignInView() {
  const current = settings.value;
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [role, setRole] = useState(current?.local_sign_in?.roles[0] ?? '');
  const [name, setName] = useState('');
  if (current === null) return null;

  const run = async (action: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (caught) {
      setError(describeError(caught));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main id="main" class="sign-in">
      <h1>tokenvault console</h1>
      {endedBecause.value === null ? null : <p role="status" class="notice">{endedBecause.value}</p>}
      <ErrorAlert error={error} />
      {current.oidc === null ? null : (
        <section aria-labelledby="oidc-heading">
          <h2 id="oidc-heading">Sign in</h2>
          <p>With your company account at {new URL(current.oidc.issuer).host}.</p>
          <button type="button" class="primary" disabled={busy} onClick={() => current.oidc !== null && void run(() => beginSignIn(current.oidc!))}>
            Sign in with your identity provider
          </button>
        </section>
      )}
      {current.local_sign_in === null ? null : (
        <section class="local-sign-in" aria-labelledby="local-heading">
          <h2 id="local-heading">Local development sign-in</h2>
          <p>
            <strong>Local stack only (npm start).</strong> Mints a token for the role you choose, without an identity provider. It does not
            exist in containers or production.
          </p>
          <form
            onSubmit={(event) => {
              event.preventDefault();
              void run(() => localSignIn(role, name));
            }}
          >
            <label>
              Role
              <select value={role} onChange={(event) => setRole(event.currentTarget.value)}>
                {current.local_sign_in.roles.map((option) => (
                  <option key={option} value={option}>
                    {option}
                  </option>
                ))}
              </select>
            </label>
            <label>
              Name (optional)
              <input value={name} onInput={(event) => setName(event.currentTarget.value)} placeholder={`local-${role}`} autoComplete="off" />
            </label>
            <button type="submit" disabled={busy}>
              Sign in locally as {role}
            </button>
          </form>
        </section>
      )}
      {current.oidc === null && current.local_sign_in === null ? (
        <div role="alert" class="error" data-testid="no-sign-in">
          <p>
            <strong>No sign-in is configured on this server.</strong> Set CONSOLE_OIDC_ISSUER and CONSOLE_OIDC_CLIENT_ID to sign in with your
            identity provider (docker compose runs a development one: see the README).
          </p>
          <p>
            With npm start, the local sign-in exists only when the API listens on loopback (HOST unset or 127.0.0.1); from another machine, leave
            HOST unset and use an SSH tunnel: ssh -L 3000:127.0.0.1:3000 &lt;that machine&gt;, then open http://127.0.0.1:3000/console/.
          </p>
        </div>
      ) : null}
    </main>
  );
}
