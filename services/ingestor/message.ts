import { z } from 'zod';
import { canonicalDeviceId, canonicalIp } from '../../lib/crypto/normalize.js';
import type { QuarantineReason } from '../../db/schema.js';

/** One SQS message as the ingestor sees it (attributes already extracted). */
export interface InboundMessage {
  messageId: string;
  body: string;
  /** SQS SentTimestamp (ms since epoch); receive time when SQS did not report it. */
  sentAt: Date;
  receiveCount: number | undefined;
}

/** A valid login event, PII fields in canonical form (still plaintext: tokenise before storing). */
export interface LoginEvent {
  userId: string;
  deviceType: string;
  ip: string;
  deviceId: string;
  locale: string | null;
  appVersion: string;
  appVersionParts: { major: number; minor: number | null; patch: number | null } | null;
}

/**
 * Fields a login event does not define. `drop` (default): producers may add fields (additive
 * schema change), the event is stored without them and their names reported; `quarantine`:
 * any unknown field quarantines the message (strict contract).
 */
export type UnknownFieldPolicy = 'drop' | 'quarantine';
export const UNKNOWN_FIELD_POLICIES = ['drop', 'quarantine'] as const satisfies readonly UnknownFieldPolicy[];

export interface ParseOptions {
  unknownFields?: UnknownFieldPolicy;
  /** Accept a valid event without the schema (default true); false runs the schema on every event (tests compare both). */
  fastPath?: boolean;
}

export type ParseResult =
  | {
      ok: true;
      event: LoginEvent;
      /**
       * Names of the fields dropped (in drop mode), in message order. A name that is not a plain
       * identifier is reported as UNSAFE_FIELD_NAME: the key itself could hold an IP or a device id.
       */
      droppedFields: string[];
    }
  | { ok: false; reasons: QuarantineReason[] };

/** Stands for a dropped field whose name is not a plain identifier (never logged or used as a label). */
export const UNSAFE_FIELD_NAME = '_unnamed';

/** The SQS maximum message size: anything larger was not sent by a well-behaved producer. Checked before JSON.parse. */
export const MAX_BODY_BYTES = 256 * 1024;
/** A login event is one flat object; anything nested deeper than this is hostile or wrong. */
export const MAX_NESTING_DEPTH = 8;

// Column limits from db/schema.ts (user_logins); device_id is stored encrypted, the limit bounds vault rows.
const LIMITS = { user_id: 128, device_type: 32, locale: 32, app_version: 32, device_id: 128, ip: 64 } as const;

// C0/C1 control characters (NUL included: PostgreSQL text cannot hold it) and unpaired surrogates
// (the driver would silently turn them into U+FFFD, changing the value).
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;
const LONE_SURROGATE = /\p{Cs}/u;
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const EXPECTED_KEYS = new Set(['user_id', 'app_version', 'device_type', 'ip', 'locale', 'device_id']);
// Field names echoed into reasons must be harmless identifiers: a hostile key could itself carry PII.
const SAFE_FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

function text(field: keyof typeof LIMITS) {
  return z
    .string()
    .min(1)
    .max(LIMITS[field])
    .refine((value) => !CONTROL_CHARACTERS.test(value), { params: { code: 'control_character' }, abort: true })
    .refine((value) => !LONE_SURROGATE.test(value), { params: { code: 'invalid_unicode' }, abort: true });
}

const loginEventSchema = z.object({
  user_id: text('user_id'),
  device_type: text('device_type'),
  ip: text('ip').refine((value) => canonicalIp(value.trim()) !== undefined, { params: { code: 'invalid_ip' } }),
  // Missing and null carry the same information (many serialisers omit nulls), so both mean "no locale".
  locale: text('locale').nullish(),
  app_version: text('app_version'),
  device_id: text('device_id').refine((value) => canonicalDeviceId(value).length > 0, { params: { code: 'empty' } }),
});

/**
 * Validates one message body. Never throws: every problem becomes a reason code with the
 * field NAME (never the value), so quarantine rows and logs stay free of PII.
 */
export function parseLoginEvent(body: string, options: ParseOptions = {}): ParseResult {
  const unknownFields = options.unknownFields ?? 'drop';
  // Guard before JSON.parse: a huge or deeply nested body must not cost memory or stack.
  if (body.length > MAX_BODY_BYTES || Buffer.byteLength(body, 'utf8') > MAX_BODY_BYTES) return fail('body_too_large');
  if (nestingDepthExceeds(body, MAX_NESTING_DEPTH)) return fail('nesting_too_deep');
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return fail('invalid_json');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return fail('not_an_object');

  const reasons: QuarantineReason[] = [];
  const unexpected: QuarantineReason[] = [];
  const droppedFields: string[] = [];
  for (const key of Object.keys(parsed)) {
    // Prototype-pollution keys quarantine whatever the policy: they are an attack, not an additive change.
    if (FORBIDDEN_KEYS.has(key)) reasons.push({ code: 'forbidden_key', path: key });
    else if (!EXPECTED_KEYS.has(key)) {
      const safe = SAFE_FIELD_NAME.test(key);
      unexpected.push(safe ? { code: 'unexpected_field', path: key } : { code: 'unexpected_field' });
      droppedFields.push(safe ? key : UNSAFE_FIELD_NAME);
    }
  }
  // The common case (a valid event) without the schema's per-check overhead; anything the fast
  // check does not accept goes through the schema, which gives the reasons.
  if (options.fastPath !== false && reasons.length === 0 && (unknownFields === 'drop' || unexpected.length === 0)) {
    const event = acceptValid(parsed as Record<string, unknown>);
    if (event !== undefined) return { ok: true, droppedFields, event };
  }
  // Only the fields a login event defines reach the schema: an unknown field is never read.
  const result = loginEventSchema.safeParse(pick(parsed as Record<string, unknown>, EXPECTED_KEYS));
  if (!result.success) {
    for (const issue of result.error.issues) reasons.push(reasonOf(issue, parsed as Record<string, unknown>));
  }
  if (unknownFields === 'quarantine') reasons.unshift(...unexpected);
  // A message quarantined for another reason still lists its unknown fields (after the real
  // reasons): "foo" and "bar" tell the operator it is another kind of message.
  else if (reasons.length > 0) reasons.push(...unexpected);
  if (reasons.length > 0 || !result.success) return { ok: false, reasons: dedupe(reasons) };

  const data = result.data;
  return {
    ok: true,
    droppedFields,
    event: {
      userId: data.user_id,
      deviceType: data.device_type,
      // Validated above, so both are defined.
      ip: canonicalIp(data.ip.trim()) ?? '',
      deviceId: canonicalDeviceId(data.device_id),
      locale: data.locale ?? null,
      appVersion: data.app_version,
      appVersionParts: parseAppVersion(data.app_version),
    },
  };
}

// Either kind of character the schema refuses in text (control characters, lone surrogates).
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const REFUSED_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]|\p{Cs}/u;

/** A text field the schema would accept as it is: a string, 1..limit long, no refused character. */
function acceptableText(record: Record<string, unknown>, field: keyof typeof LIMITS): string | undefined {
  const value = Object.hasOwn(record, field) ? record[field] : undefined;
  return typeof value === 'string' && value.length >= 1 && value.length <= LIMITS[field] && !REFUSED_CHARACTERS.test(value) ? value : undefined;
}

/**
 * The event when every field passes exactly the checks of loginEventSchema, else undefined (the
 * caller then runs the schema, which rejects it with reasons or accepts it). Never accepts what
 * the schema would refuse: it is the same rules, written out.
 */
function acceptValid(record: Record<string, unknown>): LoginEvent | undefined {
  const userId = acceptableText(record, 'user_id');
  const deviceType = acceptableText(record, 'device_type');
  const ip = acceptableText(record, 'ip');
  const appVersion = acceptableText(record, 'app_version');
  const deviceId = acceptableText(record, 'device_id');
  if (userId === undefined || deviceType === undefined || ip === undefined || appVersion === undefined || deviceId === undefined) return undefined;
  const rawLocale = Object.hasOwn(record, 'locale') ? record.locale : undefined;
  let locale: string | null = null;
  if (rawLocale !== undefined && rawLocale !== null) {
    const accepted = acceptableText(record, 'locale');
    if (accepted === undefined) return undefined;
    locale = accepted;
  }
  const canonical = canonicalIp(ip.trim());
  const device = canonicalDeviceId(deviceId);
  if (canonical === undefined || device.length === 0) return undefined;
  return { userId, deviceType, ip: canonical, deviceId: device, locale, appVersion, appVersionParts: parseAppVersion(appVersion) };
}

const DOTTED_NUMERIC = /^(\d{1,9})(?:\.(\d{1,9}))?(?:\.(\d{1,9}))?$/;

/** "2.3.0" → 2/3/0, "0.96" → 0/96/null; anything not dotted numeric → null (the text column keeps it losslessly). */
export function parseAppVersion(version: string): LoginEvent['appVersionParts'] {
  const match = DOTTED_NUMERIC.exec(version);
  if (match?.[1] === undefined) return null;
  return {
    major: Number(match[1]),
    minor: match[2] === undefined ? null : Number(match[2]),
    patch: match[3] === undefined ? null : Number(match[3]),
  };
}

function reasonOf(issue: z.core.$ZodIssue, input: Record<string, unknown>): QuarantineReason {
  const field = issue.path[0];
  const path = typeof field === 'string' ? field : undefined;
  const withPath = (code: string): QuarantineReason => (path === undefined ? { code } : { code, path });
  switch (issue.code) {
    case 'invalid_type':
      return withPath(path !== undefined && input[path] === undefined ? 'missing_field' : 'invalid_type');
    case 'too_big':
      return withPath('too_long');
    case 'too_small':
      return withPath('empty');
    case 'custom': {
      const code = (issue.params as { code?: unknown } | undefined)?.code;
      return withPath(typeof code === 'string' ? code : 'invalid_value');
    }
    default:
      // Zod's own message may quote the value; only the code is kept.
      return withPath('invalid_value');
  }
}

/** A null-prototype copy with only the wanted own keys: nothing inherited, nothing unknown. */
function pick(record: Record<string, unknown>, keys: ReadonlySet<string>): Record<string, unknown> {
  const picked = Object.create(null) as Record<string, unknown>;
  for (const key of keys) if (Object.hasOwn(record, key)) picked[key] = record[key];
  return picked;
}

function fail(code: string): ParseResult {
  return { ok: false, reasons: [{ code }] };
}

function dedupe(reasons: QuarantineReason[]): QuarantineReason[] {
  const seen = new Set<string>();
  return reasons.filter((reason) => {
    const key = `${reason.code}\u0000${reason.path ?? ''}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Linear scan for bracket depth outside strings; cheap next to JSON.parse and bounded by MAX_BODY_BYTES. */
export function nestingDepthExceeds(body: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < body.length; i += 1) {
    const c = body.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i += 1; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      depth += 1;
      if (depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) depth -= 1;
  }
  return false;
}
