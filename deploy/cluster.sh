#!/usr/bin/env bash
# Starts and stops a local N-node cluster on loopback, for trials.
#
#   deploy/cluster.sh start [N] [presenced flags...]   (N defaults to 3)
#   deploy/cluster.sh status
#   deploy/cluster.sh stop
#
# Node i (1..N) is "node-i" with HTTP on 127.0.0.1:$((8080+i)) and its cluster
# port on 127.0.0.1:$((7400+i)); node-1 starts the cluster, each later node
# joins through the ones before it. Data, logs and pids live under
# $PRESENCE_CLUSTER_DIR (default ./cluster-run): node-i/ (data), node-i.log,
# node-i.pid. Authentication is jwt with a secret generated once into
# $PRESENCE_CLUSTER_DIR/secret; mint tokens with
#   build/programs/presencectl token --secret "$(cat cluster-run/secret)" --user alice
# Builds presenced and presencectl first (Debian packages via scripts/setup.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${PRESENCE_CLUSTER_DIR:-$PWD/cluster-run}"
http_base="${PRESENCE_HTTP_BASE:-8080}"
cluster_base="${PRESENCE_CLUSTER_BASE:-7400}"
cmd="${1:-}"
shift || true

build() {
  bash "$root/scripts/setup.sh"
  cmake -S "$root" -B "$root/build" -G Ninja >/dev/null
  cmake --build "$root/build" -j2 --target presenced presencectl
}

wait_ready() { # port pid log
  for _ in $(seq 1 200); do
    if curl -fsS "http://127.0.0.1:$1/readyz" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$2" 2>/dev/null; then
      echo "cluster: a node exited; its log ($3):" >&2
      tail -20 "$3" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "cluster: node on port $1 not ready after 20 s; see $3" >&2
  return 1
}

case "$cmd" in
  start)
    n="${1:-3}"
    if [[ "$n" =~ ^[0-9]+$ ]]; then shift || true; else n=3; fi
    if (( n < 1 || n > 20 )); then echo "cluster: N must be 1..20" >&2; exit 2; fi
    build
    mkdir -p "$dir"
    [ -s "$dir/secret" ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/secret"
    secret="$(cat "$dir/secret")"
    seeds=""
    for i in $(seq 1 "$n"); do
      pidfile="$dir/node-$i.pid"
      if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        echo "cluster: node-$i already runs (pid $(cat "$pidfile"))"
      else
        args=(--node.id="node-$i" --node.http_port=$((http_base + i))
              --node.cluster_port=$((cluster_base + i)) --node.data_dir="$dir/node-$i"
              --auth.mode=jwt --auth.secret="$secret")
        [ -n "$seeds" ] && args+=(--node.seeds="$seeds")
        "$root/build/programs/presenced" "${args[@]}" "$@" >>"$dir/node-$i.log" 2>&1 &
        echo $! > "$pidfile"
        wait_ready $((http_base + i)) "$(cat "$pidfile")" "$dir/node-$i.log"
        echo "cluster: node-$i ready on http://127.0.0.1:$((http_base + i))"
      fi
      seeds="${seeds:+$seeds,}127.0.0.1:$((cluster_base + i))"
    done
    "$root/build/programs/presencectl" --node "127.0.0.1:$((http_base + 1))" \
      --secret "$secret" status
    ;;
  status)
    "$root/build/programs/presencectl" --node "127.0.0.1:$((http_base + 1))" \
      --secret "$(cat "$dir/secret")" status
    ;;
  stop)
    for pidfile in "$dir"/node-*.pid; do
      [ -e "$pidfile" ] || continue
      pid="$(cat "$pidfile")"
      if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        echo "cluster: stopped $(basename "$pidfile" .pid)"
      fi
      rm -f "$pidfile"
    done
    ;;
  *)
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
