import { LocationProvider, Route, Router, useLocation } from 'preact-iso';
import { useEffect } from 'preact/hooks';
import { secondsLeft, session } from './session.js';
import type { Session } from './types.js';
import { signOut } from './sign-in.js';
import { ApprovalsView } from './views/approvals.js';
import { AuditView } from './views/audit.js';
import { EraseView } from './views/erase.js';
import { RevealView } from './views/reveal.js';
import { SignInView } from './views/sign-in.js';
import { TokenizeView } from './views/tokenize.js';

interface ViewLink {
  path: string;
  label: string;
  allowed: (session: Session) => boolean;
}

/** Only what the policy lets the signed-in roles do is offered. */
export const VIEWS: ViewLink[] = [
  { path: '/console/audit', label: 'Audit log', allowed: (s) => s.permissions.audit },
  { path: '/console/approvals', label: 'Approvals', allowed: (s) => s.canApprove },
  { path: '/console/reveal', label: 'Reveal', allowed: (s) => Object.keys(s.permissions.reveal).length > 0 },
  { path: '/console/tokenize', label: 'Tokenize', allowed: (s) => s.permissions.tokenize.length > 0 },
  { path: '/console/erase', label: 'Erase', allowed: (s) => s.permissions.erase.length > 0 },
];

export function App() {
  return (
    <LocationProvider>
      <Shell />
    </LocationProvider>
  );
}

function Shell() {
  const current = session.value;
  if (current === null) return <SignInView />;
  const allowed = VIEWS.filter((view) => view.allowed(current));
  return (
    <div class="shell">
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">tokenvault console</span>
        <nav aria-label="Views">
          <ul>
            {allowed.map((view) => (
              <li key={view.path}>
                <NavLink path={view.path} label={view.label} />
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <span>
            <strong>{current.sub}</strong> ({current.roles.join(', ') || 'no roles'})
            {current.via === 'local' ? <span class="badge warn"> local sign-in</span> : null}
          </span>
          <SessionClock />
          <button type="button" onClick={() => void signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {allowed.length === 0 ? (
          <p role="status">
            Your roles ({current.roles.join(', ') || 'none'}) give you nothing to do in this console. It offers the audit log (auditors), approvals
            (approvers), reveal (investigators, support), tokenize (analysts) and erase (privacy officers).
          </p>
        ) : (
          <Router>
            {allowed.map((view) => (
              <Route key={view.path} path={view.path} component={componentFor(view.path)} />
            ))}
            <Route default component={() => <Redirect to={allowed[0]?.path ?? '/console/'} />} />
          </Router>
        )}
      </main>
    </div>
  );
}

function componentFor(path: string) {
  switch (path) {
    case '/console/audit':
      return AuditView;
    case '/console/approvals':
      return ApprovalsView;
    case '/console/reveal':
      return RevealView;
    case '/console/tokenize':
      return TokenizeView;
    default:
      return EraseView;
  }
}

function NavLink({ path, label }: { path: string; label: string }) {
  const { path: currentPath } = useLocation();
  return (
    <a href={path} aria-current={currentPath === path ? 'page' : undefined}>
      {label}
    </a>
  );
}

function Redirect({ to }: { to: string }) {
  const { route } = useLocation();
  useEffect(() => route(to, true), [to]);
  return null;
}

function SessionClock() {
  const left = secondsLeft.value;
  const minutes = Math.floor(left / 60);
  const text = minutes >= 1 ? `${minutes} min` : `${left} s`;
  return (
    <span class={left < 120 ? 'expiry soon' : 'expiry'} data-testid="session-expiry" title={session.value?.expiresAt.toISOString()}>
      session ends in {text}
    </span>
  );
}
