#!/usr/bin/env bash
# The whole test suite from a fresh clone: installs tools and dependencies,
# then typecheck, lint, the test-vector reproducibility check and every test.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash infra/scripts/ensure-tools.sh --with-services
export npm_config_nodedir="${npm_config_nodedir:-/usr}"
pnpm install --frozen-lockfile
pnpm typecheck
pnpm lint
pnpm vectors:check
mkdir -p .tmp
status=0
pnpm exec vitest run --reporter=default --reporter=json --outputFile.json=.tmp/vitest-report.json || status=$?
# One plain closing line with the totals, whatever the reporter printed above.
node -e '
  const r = JSON.parse(require("fs").readFileSync(".tmp/vitest-report.json", "utf8"));
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
' || true
exit "$status"
