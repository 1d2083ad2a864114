#!/usr/bin/env bash
# Unit tests and size check; with PRESENCED=/path/to/presenced also the
# integration and browser tests. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")"
[ -d node_modules ] || npm ci --no-audit --no-fund
status=0
node --test test/unit/ test/size.test.js || status=1
if [ -n "${PRESENCED:-}" ]; then
  node --test --test-concurrency=1 test/integration/ || status=1
  if [ -d test/browser ]; then
    if [ -x /usr/bin/chromium ]; then
      node --test --test-concurrency=1 test/browser/ || status=1
    else
      echo "browser test SKIPPED: /usr/bin/chromium is missing (apt-get install -y chromium)"
    fi
  fi
else
  echo "integration and browser tests SKIPPED: set PRESENCED=/path/to/presenced"
fi
exit $status
