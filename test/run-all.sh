#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: the real tools the tests
# compare against (apt-get, when root), the npm packages (npm ci), then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
test/fixtures/install-tools.sh
npm ci --no-audit --no-fund
npm test
