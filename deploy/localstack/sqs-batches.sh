#!/usr/bin/env bash
# Splits a JSONL file into SendMessageBatch inputs of 10 entries (batch-000.json, ...) in OUT_DIR,
# each body exactly one line of the file (byte for byte, newline excluded), JSON-escaped, and
# writes the expected MD5 of every body beside it (batch-000.md5: "Id md5" lines) so the
# sender can check SQS's MD5OfMessageBody.
# Usage: sqs-batches.sh FILE QUEUE_URL OUT_DIR
set -euo pipefail
file="$1" queue_url="$2" out="$3"
mkdir -p "$out"

json_string() {
  # JSON string escaping of one line: backslash, double quote, tab, carriage return.
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\t'/\\t}
  s=${s//$'\r'/\\r}
  printf '"%s"' "$s"
}

n=0 batch=0 entries="" digests=""
flush() {
  [ -z "$entries" ] && return 0
  printf '{"QueueUrl":%s,"Entries":[%s]}\n' "$(json_string "$queue_url")" "$entries" >"$(printf '%s/batch-%03d.json' "$out" "$batch")"
  printf '%s' "$digests" >"$(printf '%s/batch-%03d.md5' "$out" "$batch")"
  batch=$((batch + 1)) entries="" digests=""
}
while IFS= read -r line || [ -n "$line" ]; do
  [ -z "$line" ] && continue
  entry=$(printf '{"Id":"m%d","MessageBody":%s}' "$n" "$(json_string "$line")")
  entries="${entries:+$entries,}$entry"
  digests+="m$n $(printf '%s' "$line" | md5sum | cut -d' ' -f1)"$'\n'
  n=$((n + 1))
  if [ $((n % 10)) -eq 0 ]; then flush; fi
done <"$file"
flush
echo "$n"
