#!/usr/bin/env bash
# One-shot set-up of the local AWS stand-ins in LocalStack (docker compose `init` service):
#   * SQS dead-letter queue login-queue-dlq and login-queue with a redrive policy (maxReceiveCount 5)
#   * KMS key with alias alias/tokenvault (the services' KMS_KEY_ID)
#   * asymmetric KMS signing key alias/tokenvault-audit (the reveal-api's AUDIT_SIGNING_KEY_ID): ECC P-256,
#     sign/verify only, so audit checkpoints are signed by a key the database never holds
#   * the reference messages of data/login-queue.sample.jsonl, once, byte for byte (MD5-checked)
# Idempotent: a second run finds everything in place and sends nothing.
set -euo pipefail
: "${AWS_ENDPOINT_URL:?set AWS_ENDPOINT_URL (http://localstack:4566)}"
QUEUE_NAME=${QUEUE_NAME:-login-queue}
DLQ_NAME=${DLQ_NAME:-login-queue-dlq}
MAX_RECEIVE_COUNT=${MAX_RECEIVE_COUNT:-5}
VISIBILITY_TIMEOUT=${VISIBILITY_TIMEOUT:-30}
KMS_ALIAS=${KMS_ALIAS:-alias/tokenvault}
SIGNING_ALIAS=${SIGNING_ALIAS:-alias/tokenvault-audit}
MESSAGES_FILE=${MESSAGES_FILE:-/data/login-queue.sample.jsonl}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

dlq_url=$(aws sqs create-queue --queue-name "$DLQ_NAME" --attributes MessageRetentionPeriod=1209600 --query QueueUrl --output text)
dlq_arn=$(aws sqs get-queue-attributes --queue-url "$dlq_url" --attribute-names QueueArn --query Attributes.QueueArn --output text)
cat >"$work/queue-attributes.json" <<JSON
{
  "VisibilityTimeout": "$VISIBILITY_TIMEOUT",
  "RedrivePolicy": "{\"deadLetterTargetArn\":\"$dlq_arn\",\"maxReceiveCount\":\"$MAX_RECEIVE_COUNT\"}"
}
JSON
queue_url=$(aws sqs create-queue --queue-name "$QUEUE_NAME" --attributes "file://$work/queue-attributes.json" --query QueueUrl --output text)
echo "sqs: $queue_url (dead letters after $MAX_RECEIVE_COUNT receives -> $dlq_url)"

if aws kms describe-key --key-id "$KMS_ALIAS" >/dev/null 2>&1; then
  echo "kms: $KMS_ALIAS exists"
else
  key_id=$(aws kms create-key --description "tokenvault local KEK" --query KeyMetadata.KeyId --output text)
  aws kms create-alias --alias-name "$KMS_ALIAS" --target-key-id "$key_id"
  echo "kms: created $KMS_ALIAS -> $key_id"
fi

if aws kms describe-key --key-id "$SIGNING_ALIAS" >/dev/null 2>&1; then
  echo "kms: $SIGNING_ALIAS exists"
else
  signing_id=$(aws kms create-key --description "tokenvault local audit checkpoint signing key" \
    --key-spec ECC_NIST_P256 --key-usage SIGN_VERIFY --query KeyMetadata.KeyId --output text)
  aws kms create-alias --alias-name "$SIGNING_ALIAS" --target-key-id "$signing_id"
  echo "kms: created $SIGNING_ALIAS -> $signing_id (ECC_NIST_P256, SIGN_VERIFY)"
fi

# The queue tag marks "reference messages already sent", so re-running init never duplicates them.
seeded=$(aws sqs list-queue-tags --queue-url "$queue_url" --query 'Tags."tokenvault:seeded"' --output text)
if [ "$seeded" = "true" ]; then
  echo "messages: already loaded"
  exit 0
fi
count=$(bash "$here/sqs-batches.sh" "$MESSAGES_FILE" "$queue_url" "$work/batches")
for batch in "$work"/batches/batch-*.json; do
  # Every entry must come back in Successful with the MD5 of exactly the bytes of its line.
  aws sqs send-message-batch --cli-input-json "file://$batch" --query 'Successful[].[Id,MD5OfMessageBody]' --output text \
    | tr -s '\t' ' ' | sort >"$work/got"
  sort "${batch%.json}.md5" >"$work/want"
  if [ "$(cat "$work/got")" != "$(cat "$work/want")" ]; then
    printf 'messages: %s was not stored byte for byte\nexpected:\n%s\ngot:\n%s\n' "$(basename "$batch")" "$(cat "$work/want")" "$(cat "$work/got")" >&2
    exit 1
  fi
done
aws sqs tag-queue --queue-url "$queue_url" --tags tokenvault:seeded=true
echo "messages: sent $count bodies from $(basename "$MESSAGES_FILE")"
