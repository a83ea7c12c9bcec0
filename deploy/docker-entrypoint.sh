#!/bin/sh
# Entry point of the tokenvault image: the first argument names the process to run.
set -eu

usage() {
  cat <<'USAGE'
usage: tokenvault <command> [args]
  ingestor                 SQS consumer: validate, tokenise, encrypt, store (metrics/health on METRICS_PORT, default 9464)
  reveal-api               HTTP API: POST /reveal, audit log (PORT, default 3000)
  migrate                  apply database migrations, roles and grants (needs the owner's DATABASE_URL), then exit
  keys:rotate-kek          re-wrap every data key and token key under KMS_KEY_ID (the new KMS key), then exit
  keys:rotate-token-key    activate a new HMAC token key and re-tokenise the vault and user_logins, then exit
  maintenance [--dry-run]  prepare user_logins partitions ahead, apply retention and shred unreferenced vault values (owner's DATABASE_URL), then exit
  db:partition             move a pre-partitioning user_logins into the monthly partitions (online, resumable), then exit
  audit:verify [args]      verify the audit log and its signed checkpoints (exit 0 intact, 1 broken, 2 not checked);
                           offline: audit:verify --export FILE --checkpoints FILE --public-key FILE (no database, no secret)
  audit:export --out FILE  write the audit log as NDJSON (rows, then checkpoints) for the offline verifier
  mint-local-token ROLE..  print a 1-hour JWT for ROLEs, signed with JWT_SECRET (LOCAL COMPOSE STACK ONLY)
  healthcheck              exit 0 when the service in this container answers /healthz
USAGE
}

command="${1:-help}"
[ "$#" -gt 0 ] && shift

case "$command" in
  ingestor) exec node dist/services/ingestor/main.js "$@" ;;
  reveal-api) exec node dist/services/reveal-api/main.js "$@" ;;
  migrate) exec node dist/cli/migrate.js "$@" ;;
  keys:rotate-kek) exec node dist/cli/keys-rotate-kek.js "$@" ;;
  keys:rotate-token-key) exec node dist/cli/keys-rotate-token-key.js "$@" ;;
  audit:verify) exec node dist/cli/audit-verify.js "$@" ;;
  audit:export) exec node dist/cli/audit-export.js "$@" ;;
  maintenance) exec node dist/cli/maintenance.js "$@" ;;
  db:partition) exec node dist/cli/db-partition.js "$@" ;;
  healthcheck)
    # One image serves both long-running processes: healthy when either health endpoint answers.
    exec node -e '
      const ports = process.argv.slice(1).filter((p) => /^[0-9]+$/.test(p));
      Promise.any(ports.map((port) =>
        fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) })
          .then((res) => (res.ok ? res : Promise.reject(new Error(String(res.status)))))))
        .then(() => process.exit(0), () => process.exit(1));
    ' "${PORT:-3000}" "${METRICS_PORT:-9464}"
    ;;
  mint-local-token)
    if [ -z "${JWT_SECRET:-}" ]; then
      echo "mint-local-token only works with JWT_SECRET (the local compose stack); production tokens come from your identity provider" >&2
      exit 64
    fi
    if [ "$#" -eq 0 ]; then
      echo "usage: tokenvault mint-local-token ROLE [ROLE...]   e.g. investigator, auditor, privacy-officer" >&2
      exit 64
    fi
    # jose signs (HS256 with the same secret, issuer and audience the reveal-api is configured with).
    exec node --input-type=module -e '
      import { SignJWT } from "jose";
      const { JWT_SECRET, JWT_ISSUER, JWT_AUDIENCE, JWT_ROLES_CLAIM } = process.env;
      const roles = process.argv.slice(1);
      const token = await new SignJWT({ [JWT_ROLES_CLAIM || "roles"]: roles })
        .setProtectedHeader({ alg: "HS256", typ: "JWT" })
        .setSubject(`local-${roles.join("+")}`)
        .setIssuer(JWT_ISSUER)
        .setAudience((JWT_AUDIENCE || "").split(",")[0])
        .setIssuedAt()
        .setExpirationTime("1h")
        .sign(new TextEncoder().encode(JWT_SECRET));
      console.log(token);
    ' "$@"
    ;;
  help | -h | --help) usage ;;
  *)
    echo "tokenvault: unknown command '$command'" >&2
    usage >&2
    exit 64
    ;;
esac
