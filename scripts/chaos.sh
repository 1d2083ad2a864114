#!/bin/sh
# Seeded client-side fault test of a 3-node cluster (see scripts/chaos.py).
#   scripts/chaos.sh --seconds N --seed S [--binary PATH] [--out DIR]
# The binary defaults to build/programs/presenced; exit status 0 only if no
# invariant failed.
here=$(cd "$(dirname "$0")" && pwd)
exec python3 "$here/chaos.py" "$@"
