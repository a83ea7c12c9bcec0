/**
 * One sentence on why a database connection failed, for start-up errors: names the setting
 * (DATABASE_URL), the host, the database and the user, never the password. A wrong password
 * is "authentication failed for user X", not "cannot reach".
 */
export function describeDatabaseFailure(error: unknown, url: string, setting = 'DATABASE_URL'): string {
  const target = describeTarget(url);
  const code = codeOf(error);
  switch (code) {
    case '28P01':
      return `authentication failed for user "${target.user}" at ${target.where}: wrong password (${setting})`;
    case '28000':
      return `PostgreSQL at ${target.where} refused user "${target.user}" (no such role, or pg_hba.conf does not allow it) (${setting})`;
    case '3D000':
      return `database "${target.database}" does not exist at ${target.host} (${setting}; create it or run the migrations against an existing one)`;
    case '57P03':
      return `PostgreSQL at ${target.where} is starting up or shutting down; retry in a moment (${setting})`;
    case '53300':
      return `PostgreSQL at ${target.where} has too many connections (${setting}; lower DATABASE_POOL_SIZE or raise max_connections)`;
    case 'ECONNREFUSED':
      return `cannot reach the database at ${target.where}: connection refused (is PostgreSQL running on that host and port?) (${setting})`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot reach the database: host "${target.hostname}" does not resolve (${setting})`;
    case 'ETIMEDOUT':
      return `cannot reach the database at ${target.where}: the connection timed out (firewall, security group?) (${setting})`;
    default:
      return `cannot use the database at ${target.where} as "${target.user}"${code === undefined ? '' : ` (${code})`} (${setting})`;
  }
}

function codeOf(error: unknown): string | undefined {
  for (let current = error, depth = 0; current !== null && typeof current === 'object' && depth < 5; current = (current as { cause?: unknown }).cause, depth += 1) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && code !== '') return code;
  }
  return undefined;
}

function describeTarget(url: string): { user: string; hostname: string; host: string; database: string; where: string } {
  try {
    const parsed = new URL(url);
    const hostname = parsed.hostname || 'localhost';
    const host = `${hostname}:${parsed.port || '5432'}`;
    const database = decodeURIComponent(parsed.pathname.replace(/^\//, '')) || decodeURIComponent(parsed.username) || 'postgres';
    const user = decodeURIComponent(parsed.username) || 'the current OS user';
    return { user, hostname, host, database, where: `${host}/${database}` };
  } catch {
    return { user: '?', hostname: '?', host: '(unparsable URL)', database: '?', where: '(unparsable URL)' };
  }
}
