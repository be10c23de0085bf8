#!/usr/bin/env bash
# Start our relay (embedded backend) the way the conformance suite needs it:
# relay@wacap of the test world of @rogatory/protocol/testing, on 127.0.0.1:<port>,
# with a 20 s session lifetime so that the suite can check expiry.
# Runs until SIGINT/SIGTERM, then stops the relay and removes its temporary data.
#   bash infra/scripts/conformance-relay.sh <port>
#   pnpm conformance --relay http://127.0.0.1:<port>     (in another shell)
set -euo pipefail
cd "$(dirname "$0")/../.."
port="${1:?usage: conformance-relay.sh <port>}"
dir="$(mktemp -d "${TMPDIR:-/tmp}/rogatory-conformance.XXXXXX")"
relay=""
cleanup() {
  if [ -n "$relay" ]; then
    kill -TERM "$relay" 2>/dev/null || true
    wait "$relay" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 0' INT TERM
# Test-only secrets: the relay key is a published test key, the passphrase only seals its file here.
export ROGATORY_RELAY_PASSPHRASE="conformance-test-only"
ROGATORY_RELAY_SESSION_SECRET="$(node -e 'process.stdout.write(require("node:crypto").randomBytes(32).toString("hex"))')"
export ROGATORY_RELAY_SESSION_SECRET
pnpm exec tsx tests/conformance/relay-fixture.ts --dir "$dir" --port "$port" --session-ttl-ms "${CONFORMANCE_SESSION_TTL_MS:-20000}"
node services/relay/bin/rogatory-relay.js start -c "$dir/relay.yaml" &
relay=$!
wait "$relay"
