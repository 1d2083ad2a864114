#!/usr/bin/env bash
# Installs what the build needs (Debian packages), builds, and starts one node on
# embedded defaults (HTTP 127.0.0.1:8080, dev auth, data under ./data).
# Extra arguments go to presenced, e.g. scripts/run.sh --presence.grace_ms=2000
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -G Ninja >/dev/null
cmake --build build -j2 --target presenced
echo "presenced: once it listens, open the live demo at http://<node.bind>:<node.http_port>/demo/ (default http://127.0.0.1:8080/demo/)"
exec build/programs/presenced "$@"
