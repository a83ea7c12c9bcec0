import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { PII_FIELDS, type PiiField } from '../../../lib/crypto/normalize.js';
import { ConfigError } from '../../../lib/errors.js';

/** How a revealed value is shown. Ordered from least to most permissive. */
export const REDACTIONS = ['masked', 'plain'] as const;
export type Redaction = (typeof REDACTIONS)[number];

const field = z.enum(PII_FIELDS);

const roleGrantSchema = z.strictObject({
  reveal: z.partialRecord(field, z.enum(REDACTIONS)).optional(),
  tokenize: z.array(field).optional(),
  erase: z.array(field).optional(),
  audit: z.boolean().optional(),
});

export const policySchema = z.object({
  $comment: z.string().optional(),
  roles: z.record(z.string().min(1), roleGrantSchema),
});

export type PolicyDocument = z.infer<typeof policySchema>;

/** What one caller (all roles combined) may do. */
export interface Permissions {
  reveal: Partial<Record<PiiField, Redaction>>;
  tokenize: ReadonlySet<PiiField>;
  erase: ReadonlySet<PiiField>;
  audit: boolean;
}

export class Policy {
  private constructor(private readonly document: PolicyDocument) {}

  static parse(document: unknown, source = 'policy'): Policy {
    const result = policySchema.safeParse(document);
    if (!result.success) {
      const problems = result.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`).join('\n');
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
    for (const role of roles) {
      if (!Object.hasOwn(this.document.roles, role)) continue;
      const grant = this.document.roles[role];
      if (grant === undefined) continue;
      for (const name of PII_FIELDS) {
        const redaction = grant.reveal?.[name];
        if (redaction !== undefined && mostPermissive(reveal[name], redaction) === redaction) reveal[name] = redaction;
      }
      for (const name of grant.tokenize ?? []) tokenize.add(name);
      for (const name of grant.erase ?? []) erase.add(name);
      audit ||= grant.audit === true;
    }
    return { reveal, tokenize, erase, audit };
  }
}

function mostPermissive(current: Redaction | undefined, candidate: Redaction): Redaction {
  if (current === undefined) return candidate;
  return REDACTIONS.indexOf(candidate) > REDACTIONS.indexOf(current) ? candidate : current;
}
