/**
 * The shapes the console's modules share: what the server sends (settings, GET /me) and what a
 * signed-in session holds. Types only, so every module can import them without importing each other.
 */

export type Field = 'ip' | 'device_id';

export interface Permissions {
  reveal: Partial<Record<Field, 'plain' | 'masked'>>;
  tokenize: string[];
  erase: string[];
  audit: boolean;
}

export interface Session {
  /** The bearer token: kept in this variable only, never in storage, cookies or the URL. */
  accessToken: string;
  expiresAt: Date;
  sub: string;
  roles: string[];
  permissions: Permissions;
  /** The policy lets this user approve or deny others' reveal requests. */
  canApprove: boolean;
  /** GET /me: budgets and open requests. */
  me: Me;
  via: 'oidc' | 'local';
  idToken?: string;
}

/** GET /console/settings.json. */
export interface ConsoleSettings {
  oidc: { issuer: string; client_id: string; scope: string; resource: string | null } | null;
  local_sign_in: { roles: string[] } | null;
  reveal_clear_seconds: number;
}

/** GET /me: who the caller is, what the policy lets them do, budgets and open requests. */
export interface Me {
  subject: string;
  roles: string[];
  unknown_roles: string[];
  fields: Record<string, { reveal: 'plain' | 'masked' | null; approval: string; tokenize: boolean; erase: boolean }>;
  audit: boolean;
  approve: boolean;
  break_glass: boolean;
  budgets: { budget: string; limit: number; used: number; remaining: number; reset_at: string }[];
  break_glass_budget: { budget: string; limit: number; used: number; remaining: number; reset_at: string } | null;
  requests: { id: string; status: string; purpose: string; ticket: string | null; field_counts: Record<string, number>; expires_at: string }[];
}
