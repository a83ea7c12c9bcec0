/**
 * JSON Canonicalization Scheme (RFC 8785) for the values the audit format uses: strings,
 * finite numbers, booleans, null, arrays and plain objects. ECMAScript's JSON.stringify
 * already serialises strings and numbers exactly as RFC 8785 requires (§3.2.2.2, §3.2.2.3);
 * what JCS adds is the member order: keys sorted by their UTF-16 code units (§3.2.3), which
 * is how JavaScript compares strings.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError('JCS cannot represent NaN or Infinity');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
  }
  throw new TypeError(`JCS cannot represent a ${typeof value}`);
}
