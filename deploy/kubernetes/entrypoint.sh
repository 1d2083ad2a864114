#!/bin/sh
# Starts presenced in a pod of the StatefulSet (mounted from the ConfigMap that
# kustomization.yaml generates). From the pod it derives:
#   node.id    = the pod name (presenced-0, presenced-1, ...): stable across restarts
#   node.bind  = the pod IP (node.bind must be an IP address; the probes reach
#                the pod there)
#   node.advertise = the pod's DNS name through the headless service
#                (presenced-<i>.<PEER_SERVICE>.<ns>.svc.<domain>): how the others
#                reach it, spelled as the seeds are, so that the first-seed rule
#                compares like with like (only presenced-0 may found the cluster)
#   node.seeds = the first SEED_COUNT pods of the set (but itself) through the
#                headless service: presenced-<i>.<PEER_SERVICE>.<ns>.svc.<domain>:7400
# and refuses auth.mode = "dev" when the set has (or may have) more than one pod.
# Environment: POD_NAME, POD_IP, POD_NAMESPACE (downward API), REPLICAS (keep it
# equal to spec.replicas), optional PEER_SERVICE (presenced-peers), SEED_COUNT (3),
# CLUSTER_DOMAIN (cluster.local), CLUSTER_PORT (7400), CONFIG
# (/etc/presenced/presenced.toml), DATA_DIR (/var/lib/presenced), PRESENCED_BIN
# (presenced). Arguments are passed on to presenced after the derived flags.
# Test seam, unset in the StatefulSet (tests/deploy/deploy_test.py, check
# statefulset, runs three of these on loopback): PEER_HOST_FORMAT, a pod's host
# with {i} for its ordinal, replaces the DNS name in the seeds and in
# node.advertise; PEER_PORT_STEP (0) gives pod i the cluster port
# CLUSTER_PORT + i * PEER_PORT_STEP (pods sharing one host need distinct ports).
set -eu
: "${POD_NAME:?POD_NAME must be set (downward API metadata.name)}"
: "${POD_IP:?POD_IP must be set (downward API status.podIP)}"
: "${POD_NAMESPACE:?POD_NAMESPACE must be set (downward API metadata.namespace)}"
replicas="${REPLICAS:-1}"
peers="${PEER_SERVICE:-presenced-peers}"
seed_count="${SEED_COUNT:-3}"
domain="${CLUSTER_DOMAIN:-cluster.local}"
cport="${CLUSTER_PORT:-7400}"
config="${CONFIG:-/etc/presenced/presenced.toml}"
data_dir="${DATA_DIR:-/var/lib/presenced}"
presenced="${PRESENCED_BIN:-presenced}"
host_format="${PEER_HOST_FORMAT:-}"
port_step="${PEER_PORT_STEP:-0}"

set_name="${POD_NAME%-*}"
ordinal="${POD_NAME##*-}"
case "$ordinal" in
  ''|*[!0-9]*) echo "entrypoint: POD_NAME '$POD_NAME' is not <set>-<ordinal>" >&2; exit 2 ;;
esac
case "$replicas" in
  ''|*[!0-9]*) echo "entrypoint: REPLICAS '$replicas' is not a number" >&2; exit 2 ;;
esac
case "$port_step" in
  ''|*[!0-9]*) echo "entrypoint: PEER_PORT_STEP '$port_step' is not a number" >&2; exit 2 ;;
esac

# Pod i's host and cluster port, as the other pods reach it.
peer_host() {
  if [ -n "$host_format" ]; then
    printf '%s\n' "$host_format" | sed "s/{i}/$1/g"
  else
    printf '%s\n' "$set_name-$1.$peers.$POD_NAMESPACE.svc.$domain"
  fi
}
peer_port() { echo $((cport + $1 * port_step)); }

n=$replicas
[ "$n" -gt "$seed_count" ] && n=$seed_count
seeds=""
i=0
while [ "$i" -lt "$n" ]; do
  if [ "$i" -ne "$ordinal" ]; then
    seeds="${seeds:+$seeds,}$(peer_host "$i"):$(peer_port "$i")"
  fi
  i=$((i + 1))
done

# (An empty --node.seeds= would take the next argument as its value: a lone
# pod gets no seeds flag at all.)
if [ -n "$seeds" ]; then set -- --node.seeds="$seeds" "$@"; fi
advertise="$(peer_host "$ordinal")"
set -- --config "$config" --node.id="$POD_NAME" --node.bind="$POD_IP" \
  --node.advertise="$advertise" --node.cluster_port="$(peer_port "$ordinal")" \
  --node.data_dir="$data_dir" "$@"

# The effective configuration (file, PRESENCED_* environment, flags), checked
# before anything starts; its auth.mode decides the dev refusal.
line="$("$presenced" "$@" --check-config)" || exit 2
mode="$(printf '%s\n' "$line" | sed -n 's/.*, auth\.mode \([a-z]*\),.*/\1/p')"
if [ "$mode" = dev ] && { [ "$replicas" -gt 1 ] || [ "$ordinal" -gt 0 ]; }; then
  echo "entrypoint: refusing auth.mode = \"dev\" with more than one replica" \
       "(REPLICAS=$replicas, pod $POD_NAME): every request would be trusted by its" \
       "X-User header. Set auth.mode = \"jwt\" and auth.secret (the Secret)." >&2
  exit 2
fi
echo "entrypoint: node $POD_NAME at $POD_IP, advertised as $advertise, seeds: ${seeds:-none}" >&2
exec "$presenced" "$@"
