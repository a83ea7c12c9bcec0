import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { PII_FIELDS, type PiiField } from '../../../lib/crypto/normalize.js';
import { ConfigError } from '../../../lib/errors.js';
import { humanError } from '../../../lib/validation/human-errors.js';
import { BUDGET_WINDOWS, type BudgetWindow } from '../../../lib/budget/ledger.js';

/** How a revealed value is shown. Ordered from least to most permissive. */
export const REDACTIONS = ['masked', 'plain'] as const;
export type Redaction = (typeof REDACTIONS)[number];

const field = z.enum(PII_FIELDS);

const valuesLimit = z.number().int().min(0).max(100_000_000);

/** Values revealed per actor per window, shared by every replica (counted in PostgreSQL). */
const budgetSchema = z
  .strictObject({ per_minute: valuesLimit.optional(), per_hour: valuesLimit.optional(), per_day: valuesLimit.optional() })
  .refine((budget) => Object.keys(budget).length > 0, { message: 'set at least one of per_minute, per_hour, per_day' });

/** When a reveal by this role waits for an approver instead of revealing. */
const approvalRuleSchema = z
  .strictObject({
    always: z.boolean().optional(),
    fields: z.array(field).optional(),
    above: z.number().int().min(0).max(100).optional(),
  })
  .refine((rule) => rule.always === true || (rule.fields?.length ?? 0) > 0 || rule.above !== undefined, {
    message: 'set always: true, fields: [...] or above: N',
  });

const roleGrantSchema = z.strictObject({
  reveal: z.partialRecord(field, z.enum(REDACTIONS)).optional(),
  tokenize: z.array(field).optional(),
  erase: z.array(field).optional(),
  audit: z.boolean().optional(),
  budget: budgetSchema.optional(),
  approval: approvalRuleSchema.optional(),
  /** May reveal without approval by saying `break_glass: true`, within this budget of values per day. */
  break_glass: z.strictObject({ per_day: valuesLimit.min(1) }).optional(),
  /** May list, approve and deny other people's reveal requests. */
  approve: z.boolean().optional(),
  /** Requests about one person (by user_id): access reveals their values as given here; erase deletes their rows. */
  person: z.strictObject({ access: z.partialRecord(field, z.enum(REDACTIONS)).optional(), erase: z.boolean().optional() }).optional(),
});

const approvalSettingsSchema = z.strictObject({
  /** A pending request expires this long after it was made; an approved one this long after approval. */
  ttl_seconds: z
    .number()
    .int()
    .min(10)
    .max(7 * 24 * 3600)
    .default(3600),
  /** Distinct approvers (never the requester) needed before the requester can collect. */
  approvers_required: z.number().int().min(1).max(2).default(1),
});

export type ApprovalSettings = z.infer<typeof approvalSettingsSchema>;

export const policySchema = z
  .strictObject({
    $comment: z.string().optional(),
    roles: z.record(z.string().min(1), roleGrantSchema),
    approval: approvalSettingsSchema.default({ ttl_seconds: 3600, approvers_required: 1 }),
  })
  .superRefine((document, ctx) => {
    for (const [name, grant] of Object.entries(document.roles)) {
      const reveals = Object.keys(grant.reveal ?? {}).length > 0;
      for (const key of ['budget', 'approval', 'break_glass'] as const) {
        if (grant[key] !== undefined && !reveals) {
          ctx.addIssue({ code: 'custom', path: ['roles', name, key], message: `${key} only applies to a role that grants reveal` });
        }
      }
    }
    const needsApprover = Object.values(document.roles).some((grant) => grant.approval !== undefined);
    if (needsApprover && !Object.values(document.roles).some((grant) => grant.approve === true)) {
      ctx.addIssue({ code: 'custom', path: ['roles'], message: 'a role requires approval but no role has approve: true' });
    }
  });

export type PolicyDocument = z.infer<typeof policySchema>;

/** What one caller (all roles combined) may do. */
export interface Permissions {
  reveal: Partial<Record<PiiField, Redaction>>;
  tokenize: ReadonlySet<PiiField>;
  erase: ReadonlySet<PiiField>;
  audit: boolean;
  approve: boolean;
  /** Values per window; a window absent here is unlimited. */
  budget: Partial<Record<BudgetWindow, number>>;
  /** Values per day when revealing with break_glass; undefined: not allowed. */
  breakGlassPerDay: number | undefined;
  /** Requests about one person: how access shows each field (absent: withheld), and whether erasure is allowed. */
  person: { access: Partial<Record<PiiField, Redaction>>; erase: boolean };
}

/** What a reveal asks for, to decide whether it waits for approval. */
export interface RevealShape {
  fields: ReadonlySet<PiiField>;
  values: number;
}

export class Policy {
  private constructor(private readonly document: PolicyDocument) {}

  static parse(document: unknown, source = 'policy'): Policy {
    const result = policySchema.safeParse(document, { error: humanError });
    if (!result.success) {
      const problems = result.error.issues.map((issue) => `  ${issue.path.length === 0 ? '(top level)' : issue.path.join('.')}: ${issue.message}`).join('\n');
      throw new ConfigError(`POLICY_FILE ${source} is invalid:\n${problems}`, ['POLICY_FILE']);
    }
    return new Policy(result.data);
  }

  static async load(file: string): Promise<Policy> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (cause) {
      throw Object.assign(new ConfigError(`POLICY_FILE ${file} cannot be read`, ['POLICY_FILE']), { cause });
    }
    let document: unknown;
    try {
      document = JSON.parse(text);
    } catch (cause) {
      throw Object.assign(new ConfigError(`POLICY_FILE ${file} is not valid JSON`, ['POLICY_FILE']), { cause });
    }
    return Policy.parse(document, file);
  }

  get roles(): string[] {
    return Object.keys(this.document.roles);
  }

  /** Union of the grants of every role the caller holds; unknown roles grant nothing. */
  permissionsFor(roles: readonly string[]): Permissions {
    const reveal: Partial<Record<PiiField, Redaction>> = {};
    const tokenize = new Set<PiiField>();
    const erase = new Set<PiiField>();
    let audit = false;
    let approve = false;
    let breakGlassPerDay: number | undefined;
    const budget: Partial<Record<BudgetWindow, number>> = {};
    const unlimited = new Set<BudgetWindow>();
    const person = { access: {} as Partial<Record<PiiField, Redaction>>, erase: false };
    for (const grant of this.grantsOf(roles)) {
      for (const name of PII_FIELDS) {
        const redaction = grant.person?.access?.[name];
        if (redaction !== undefined && mostPermissive(person.access[name], redaction) === redaction) person.access[name] = redaction;
      }
      person.erase ||= grant.person?.erase === true;
      for (const name of PII_FIELDS) {
        const redaction = grant.reveal?.[name];
        if (redaction !== undefined && mostPermissive(reveal[name], redaction) === redaction) reveal[name] = redaction;
      }
      for (const name of grant.tokenize ?? []) tokenize.add(name);
      for (const name of grant.erase ?? []) erase.add(name);
      audit ||= grant.audit === true;
      approve ||= grant.approve === true;
      if (grant.break_glass !== undefined) breakGlassPerDay = Math.max(breakGlassPerDay ?? 0, grant.break_glass.per_day);
      if (Object.keys(grant.reveal ?? {}).length > 0) {
        // Like the grants, budgets combine to the most permissive: a reveal role without a
        // limit for a window makes that window unlimited.
        for (const window of BUDGET_WINDOWS) {
          const limit = grant.budget?.[`per_${window}`];
          if (limit === undefined) unlimited.add(window);
          else budget[window] = Math.max(budget[window] ?? 0, limit);
        }
      }
    }
    for (const window of unlimited) delete budget[window];
    return { reveal, tokenize, erase, audit, approve, budget, breakGlassPerDay, person };
  }

  /**
   * A reveal waits for approval only when every role of the caller that grants reveal says so
   * (the most permissive role wins, as for grants and budgets). A role says so when its rule
   * is `always`, names a requested field, or the request asks for more than `above` values.
   */
  needsApproval(roles: readonly string[], shape: RevealShape): boolean {
    const revealing = this.grantsOf(roles).filter((grant) => Object.keys(grant.reveal ?? {}).length > 0);
    if (revealing.length === 0) return false;
    return revealing.every((grant) => {
      const rule = grant.approval;
      if (rule === undefined) return false;
      if (rule.always === true) return true;
      if (rule.fields?.some((name) => shape.fields.has(name)) === true) return true;
      return rule.above !== undefined && shape.values > rule.above;
    });
  }

  get approval(): ApprovalSettings {
    return this.document.approval;
  }

  private grantsOf(roles: readonly string[]) {
    return roles.flatMap((role) => {
      if (!Object.hasOwn(this.document.roles, role)) return [];
      const grant = this.document.roles[role];
      return grant === undefined ? [] : [grant];
    });
  }
}

function mostPermissive(current: Redaction | undefined, candidate: Redaction): Redaction {
  if (current === undefined) return candidate;
  return REDACTIONS.indexOf(candidate) > REDACTIONS.indexOf(current) ? candidate : current;
}
