import { createPublicKey, type KeyObject } from 'node:crypto';
import { createRemoteJWKSet, decodeJwt, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { ConfigError, TokenvaultError } from '../../../lib/errors.js';
import { identityProblem } from '../../../lib/validation/storable-text.js';
import { ASYMMETRIC_ALGORITHMS, type JwtConfig } from '../config.js';

export interface Principal {
  sub: string;
  roles: string[];
}

/**
 * The bearer token is missing or not acceptable: 401. `reason` is a stable code for the audit
 * log; `code` the one in the response (`subject_invalid` when the identity itself cannot be
 * used, `unauthenticated` otherwise). `claimed` holds what the token claims, unverified and
 * raw (never stored as is: the audit row gets a safe rendering of it).
 */
export class AuthenticationError extends TokenvaultError {
  claimed: { sub?: string; role?: string } = {};

  constructor(
    readonly reason: string,
    message: string,
    options: { cause?: unknown; code?: 'unauthenticated' | 'subject_invalid'; claimed?: { sub?: string; role?: string } } = {},
  ) {
    super(options.code ?? 'unauthenticated', message, { cause: options.cause, transient: false });
    if (options.claimed !== undefined) this.claimed = options.claimed;
  }
}

/** Keys could not be obtained (identity provider's JWKS unreachable): 503, not the caller's fault. */
export class AuthUnavailableError extends TokenvaultError {
  /** What the token claims, unverified (as on AuthenticationError). */
  claimed: { sub?: string } = {};

  constructor(message: string, options: { cause?: unknown } = {}) {
    super('auth_unavailable', message, { ...options, transient: true });
  }
}

export interface JwtVerifier {
  /** The allow-listed algorithms (never `none`, never HS* with an asymmetric key). */
  readonly algorithms: readonly string[];
  readonly description: string;
  verify(token: string): Promise<Principal>;
}

/** Column limits of every place an identity is stored (audit actor, budget actor, requester, approver). */
export const MAX_SUB_LENGTH = 256;
const MAX_ROLES = 64;
export const MAX_ROLE_LENGTH = 128;

/**
 * JWT verification with jose: signature, `exp` and `nbf` (with a small clock tolerance),
 * `iss`, `aud`, an explicit algorithm allow-list, a required `sub` and a roles claim.
 */
export function createJwtVerifier(config: JwtConfig, now: () => number = Date.now): JwtVerifier {
  const { key, algorithms, description } = resolveKey(config);
  const options = {
    issuer: config.issuer,
    audience: config.audience,
    algorithms: [...algorithms],
    clockTolerance: config.clockToleranceSeconds,
    requiredClaims: ['sub', 'exp'],
  };
  const rolesPath = config.rolesClaim.split('.');
  const fromJwks = config.source.kind === 'jwks';
  const cache = new VerifiedJwts(now);

  return {
    algorithms,
    description,
    async verify(token) {
      const cached = cache.get(token, config.clockToleranceSeconds);
      if (cached !== undefined) return cached;
      let payload: JWTPayload;
      try {
        // Two overloads (static key vs key resolver): the union needs a branch for the type checker.
        const verifyOptions = { ...options, currentDate: new Date(now()) };
        payload =
          typeof key === 'function' ? (await jwtVerify(token, key, verifyOptions)).payload : (await jwtVerify(token, key, verifyOptions)).payload;
      } catch (error) {
        const refused = classify(error, fromJwks);
        const sub = claimedSubject(token);
        if (sub !== undefined) refused.claimed = { sub };
        throw refused;
      }
      const principal = principalOf(payload, rolesPath, config.rolesClaim);
      cache.set(token, principal, payload.exp ?? 0);
      return principal;
    },
  };
}

/**
 * Recently verified tokens, keyed by the exact token string (any change to header, payload or
 * signature is a different key). A hit skips only the signature check: expiry is checked on
 * every use, and an entry lives at most MAX_AGE_MS so a key withdrawn from the JWKS stops
 * working within that time. Saves an ECDSA/RSA verification per request of the same session.
 */
class VerifiedJwts {
  private static readonly MAX_ENTRIES = 10_000;
  private static readonly MAX_AGE_MS = 30_000;
  private readonly entries = new Map<string, { principal: Principal; exp: number; cachedUntilMs: number }>();

  constructor(private readonly nowMs: () => number) {}

  get(token: string, toleranceSeconds: number): Principal | undefined {
    const entry = this.entries.get(token);
    if (entry === undefined) return undefined;
    const now = this.nowMs();
    if (now >= entry.cachedUntilMs || now / 1000 >= entry.exp + toleranceSeconds) {
      this.entries.delete(token);
      return undefined;
    }
    return entry.principal;
  }

  set(token: string, principal: Principal, exp: number): void {
    if (this.entries.size >= VerifiedJwts.MAX_ENTRIES) {
      // Oldest first (Map keeps insertion order).
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(token, { principal, exp, cachedUntilMs: this.nowMs() + VerifiedJwts.MAX_AGE_MS });
  }
}

/**
 * The one rule for identities: a subject or role is used exactly as signed, or not at all. One
 * that cannot be stored as given (NUL, unpaired surrogates, control characters, absurd length)
 * is refused here, at authentication, so no principal downstream (audit rows, budgets,
 * approvals, /me) ever holds one.
 */
function principalOf(payload: JWTPayload, rolesPath: string[], rolesClaim: string): Principal {
  const sub = payload.sub;
  if (typeof sub !== 'string') throw new AuthenticationError('subject_invalid', '"sub" must be a string', { code: 'subject_invalid' });
  const subProblem = identityProblem(sub, MAX_SUB_LENGTH);
  if (subProblem !== undefined) {
    throw new AuthenticationError('subject_invalid', `"sub" cannot be used as an identity: it ${subProblem}`, { code: 'subject_invalid', claimed: { sub } });
  }
  let roles: unknown = payload;
  for (const part of rolesPath) {
    roles = roles !== null && typeof roles === 'object' && !Array.isArray(roles) ? (roles as Record<string, unknown>)[part] : undefined;
  }
  if (!Array.isArray(roles) || roles.length > MAX_ROLES || !roles.every((role) => typeof role === 'string')) {
    throw new AuthenticationError('roles_claim_invalid', `"${rolesClaim}" must be an array of at most ${MAX_ROLES} role names`, { claimed: { sub } });
  }
  for (const [index, role] of (roles as string[]).entries()) {
    // An empty role grants nothing and stores fine; anything else follows the subject's rule.
    const problem = role.length === 0 ? undefined : identityProblem(role, MAX_ROLE_LENGTH);
    if (problem !== undefined) {
      throw new AuthenticationError('subject_invalid', `role ${index + 1} of "${rolesClaim}" cannot be used as an identity: it ${problem}`, {
        code: 'subject_invalid',
        claimed: { sub, role },
      });
    }
  }
  return { sub, roles: [...new Set(roles as string[])] };
}

/** The subject a refused token claims, without verifying anything (for the audit row of the refusal). */
function claimedSubject(token: string): string | undefined {
  try {
    const sub = decodeJwt(token).sub;
    return typeof sub === 'string' ? sub : undefined;
  } catch {
    return undefined;
  }
}

function classify(error: unknown, fromJwks: boolean): AuthenticationError | AuthUnavailableError {
  if (error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid) {
    return new AuthUnavailableError('the identity provider key set could not be fetched', { cause: error });
  }
  if (fromJwks && !(error instanceof errors.JOSEError)) {
    // fetch() failing (connection refused, DNS): the key set is unavailable, the token may be fine.
    return new AuthUnavailableError('the identity provider key set could not be fetched', { cause: error });
  }
  if (error instanceof errors.JWTExpired) return new AuthenticationError('token_expired', 'the token has expired', { cause: error });
  if (error instanceof errors.JWTClaimValidationFailed) {
    const reason = error.claim === 'nbf' ? 'token_not_yet_valid' : `claim_invalid_${error.claim}`;
    return new AuthenticationError(reason, `the "${error.claim}" claim is not acceptable`, { cause: error });
  }
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) {
    return new AuthenticationError('algorithm_not_allowed', 'the token algorithm is not allowed', { cause: error });
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return new AuthenticationError('signature_invalid', 'the token signature is invalid', { cause: error });
  }
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) {
    return new AuthenticationError('unknown_key', 'no trusted key matches the token', { cause: error });
  }
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) {
    return new AuthenticationError('malformed_token', 'the token is malformed', { cause: error });
  }
  return new AuthenticationError('token_invalid', 'the token is not acceptable', { cause: error });
}

interface ResolvedKey {
  key: KeyObject | Uint8Array | JWTVerifyGetKey;
  algorithms: readonly string[];
  description: string;
}

function resolveKey(config: JwtConfig): ResolvedKey {
  const source = config.source;
  if (source.kind === 'jwks') {
    const jwks = createRemoteJWKSet(new URL(source.url), {
      timeoutDuration: 5_000,
      // An unknown `kid` refetches the set (rotation) at most every 30 s, so garbage kids cannot hammer the IdP.
      cooldownDuration: 30_000,
      cacheMaxAge: 10 * 60_000,
    });
    return { key: jwks, algorithms: config.algorithms ?? ASYMMETRIC_ALGORITHMS, description: `JWKS ${source.url}` };
  }
  if (source.kind === 'secret') {
    return { key: Buffer.from(source.secret, 'utf8'), algorithms: config.algorithms ?? ['HS256'], description: 'shared secret (HS256, local use only)' };
  }
  const publicKey = parsePublicKey(source.key);
  const suitable = algorithmsFor(publicKey.key);
  const allowed = (config.algorithms ?? suitable).filter((alg) => suitable.includes(alg) && (publicKey.alg === undefined || publicKey.alg === alg));
  if (allowed.length === 0) {
    throw new ConfigError(`JWT_ALGORITHMS allows no algorithm usable with the ${publicKey.key.asymmetricKeyType ?? 'given'} key in JWT_PUBLIC_KEY`, ['JWT_ALGORITHMS']);
  }
  return { key: publicKey.key, algorithms: allowed, description: `static ${publicKey.key.asymmetricKeyType ?? ''} public key (${allowed.join(', ')})` };
}

function parsePublicKey(text: string): { key: KeyObject; alg: string | undefined } {
  const trimmed = text.trim();
  try {
    if (trimmed.startsWith('{')) {
      const jwk = JSON.parse(trimmed) as { alg?: unknown; kty?: unknown; d?: unknown };
      if (jwk.kty === 'oct' || jwk.d !== undefined) throw new Error('expected a public JWK');
      const key = createPublicKey({ key: jwk as never, format: 'jwk' });
      return { key, alg: typeof jwk.alg === 'string' ? jwk.alg : undefined };
    }
    // Environment files often carry PEM on one line with literal "\n".
    const key = createPublicKey(trimmed.replaceAll('\\n', '\n'));
    return { key, alg: undefined };
  } catch (cause) {
    const error = new ConfigError('JWT_PUBLIC_KEY: expected a PEM (SPKI) public key or a public JWK', ['JWT_PUBLIC_KEY']);
    (error as { cause?: unknown }).cause = cause;
    throw error;
  }
}

function algorithmsFor(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
    case 'rsa-pss':
      return ['PS256', 'PS384', 'PS512'];
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === 'prime256v1') return ['ES256'];
      if (curve === 'secp384r1') return ['ES384'];
      if (curve === 'secp521r1') return ['ES512'];
      return [];
    }
    case 'ed25519':
      return ['EdDSA', 'Ed25519'];
    default:
      return [];
  }
}
