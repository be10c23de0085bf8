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
pnpm test
