/**
 * What text PostgreSQL can store as given, in one place: `text` and `jsonb` refuse NUL
 * (SQLSTATE 22021 / 22P05, or a broken protocol message when a NUL reaches a statement), and a
 * lone UTF-16 surrogate has no UTF-8 form (it would be stored as something else than was sent).
 * Callers' inputs and identities are checked against these rules; untrusted strings that must
 * still be recorded are stored as a safe rendering.
 */

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
// C0 and C1 control characters and DEL.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Why PostgreSQL cannot store `value` as given, or undefined when it can. */
export function unstorable(value: string): string | undefined {
  if (value.includes('\u0000')) return 'contains a NUL character (\\u0000)';
  if (LONE_SURROGATE.test(value)) return 'contains an unpaired UTF-16 surrogate (not valid Unicode)';
  return undefined;
}

/**
 * Why `value` cannot be used as an identity (a JWT subject or role), or undefined. Stricter
 * than unstorable: identities are shown in audit rows, approval queues and /me, so control
 * characters (tabs, line breaks, escape sequences) are refused too.
 */
export function identityProblem(value: string, maxLength: number): string | undefined {
  if (value.length === 0) return 'is empty';
  if (value.length > maxLength) return `is longer than ${maxLength} characters (${value.length})`;
  const problem = unstorable(value);
  if (problem !== undefined) return problem;
  if (CONTROL.test(value)) return 'contains a control character';
  return undefined;
}

// eslint-disable-next-line no-control-regex -- matching control characters is the point
const ESCAPED = /[\u0000-\u001f\u007f-\u009f"\\]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * An untrusted string as a quoted, storable and readable rendering: control characters, lone
 * surrogates, quotes and backslashes as `\uXXXX`, cut after `maxLength` characters with the
 * full length named. `nul\u0000sub` → `"nul\u0000sub"`.
 */
export function safeRendering(value: string, maxLength = 64): string {
  const cut = value.length > maxLength ? value.slice(0, maxLength) : value;
  // A cut between the halves of a pair leaves a lone high surrogate: it is escaped like any other.
  const escaped = cut.replace(ESCAPED, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return `"${escaped}"${value.length > maxLength ? `…(${value.length} characters)` : ''}`;
}
