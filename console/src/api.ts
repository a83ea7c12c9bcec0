import { session, expireSession } from './session.js';

/** An error answer of the API: its stable code and message, and the HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ApiResponse<T> {
  status: number;
  body: T;
}

/**
 * Calls the reveal-api on this origin with the signed-in user's bearer token (held in memory
 * only). Errors come back as ApiError with the API's `{error:{code,message}}`; a 401 ends the
 * session so the page never keeps acting on an expired token.
 */
export async function api<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<ApiResponse<T>> {
  const current = session.value;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (current !== null) headers.authorization = `Bearer ${current.accessToken}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(path, { method, headers, cache: 'no-store', credentials: 'omit', ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  } catch {
    throw new ApiError(0, 'network_error', 'the server cannot be reached');
  }
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text.length > 0 ? JSON.parse(text) : undefined;
  } catch {
    // Not JSON (a proxy's error page): the status alone describes it.
  }
  if (!response.ok) {
    const error = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
    if (response.status === 401 && current !== null) expireSession('The server no longer accepts your session; sign in again.');
    throw new ApiError(response.status, error?.code ?? `http_${response.status}`, error?.message ?? `the server answered ${response.status}`);
  }
  return { status: response.status, body: parsed as T };
}

/** The raw response (for NDJSON export). */
export async function apiRaw(path: string): Promise<Response> {
  const current = session.value;
  const response = await fetch(path, {
    headers: current === null ? {} : { authorization: `Bearer ${current.accessToken}` },
    cache: 'no-store',
    credentials: 'omit',
  });
  if (!response.ok) {
    let error: { code?: string; message?: string } | undefined;
    try {
      error = ((await response.json()) as { error?: { code?: string; message?: string } }).error;
    } catch {
      error = undefined;
    }
    throw new ApiError(response.status, error?.code ?? `http_${response.status}`, error?.message ?? `the server answered ${response.status}`);
  }
  return response;
}

/** True when the server has no such route (an API this server version does not offer yet). */
export function isMissingRoute(error: unknown): boolean {
  return error instanceof ApiError && error.status === 404 && (error.code === 'not_found' || error.code === 'http_404');
}

export function describeError(error: unknown): string {
  if (error instanceof ApiError) return `${error.message} (${error.code})`;
  return error instanceof Error ? error.message : String(error);
}
