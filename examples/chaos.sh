#!/usr/bin/env bash
# examples/chaos.sh [OUT]   (default OUT: runs/chaos; needs nats-server on PATH and a built CLI: npm run build)
# A chaos study on this machine, runnable as it is: starts a nats-server of its own (random
# loopback port, JetStream, a temporary store), runs `phalanx local --config examples/chaos.yaml`
# against it, and while the cluster trains sends operator-signed chaos commands with the run's
# own operator key (`phalanx local` writes it to OUT/operator.pem before any node starts; every
# node is pinned to it). The schedule, by the round the cluster has completed:
#   round 3: corrupt server-0 --attack reversed, corrupt worker-0 --attack sign-flip
#   round 15: pause worker-1        round 25: resume worker-1
#   round 35: corrupt server-0 --attack none, corrupt worker-0 --attack none (honest again)
# (a round takes well under a second here, a `phalanx chaos` command a few: hence the spacing;
# a node that finished its rounds no longer listens, so keep the last phase well before the end)
# OUT then holds summary.json, rounds.csv, report.html, logs/ of every node, phalanx-local.log
# (the run's stderr) and chaos.log (each command and its acknowledgement).
# PHALANX (default: node packages/cli/dist/bin.js) is how phalanx is run; NATS_SERVER the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/chaos}
read -r -a phalanx <<<"${PHALANX:-node packages/cli/dist/bin.js}"
nats_server=${NATS_SERVER:-nats-server}
cluster="chaos-example-$$"
mkdir -p "$out"
nats_dir=$(mktemp -d)
nats_pid='' local_pid=''
cleanup() {
  [ -n "$local_pid" ] && kill "$local_pid" 2>/dev/null || true
  [ -n "$nats_pid" ] && kill "$nats_pid" 2>/dev/null && wait "$nats_pid" 2>/dev/null || true
  rm -rf "$nats_dir"
}
trap cleanup EXIT

"$nats_server" -a 127.0.0.1 -p -1 -js -sd "$nats_dir/store" -l "$nats_dir/nats.log" &
nats_pid=$!
port=''
for _ in $(seq 100); do
  port=$(sed -n 's/.*Listening for client connections on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$nats_dir/nats.log" 2>/dev/null || true)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "chaos.sh: nats-server did not start (see $nats_dir/nats.log)" >&2; exit 1; }
nats_url="nats://127.0.0.1:$port"
echo "chaos.sh: nats-server at $nats_url, cluster $cluster, out $out"

# Logs go to stderr as one JSON line per round (stderr is not a terminal here).
PHALANX_LOG_LEVEL=info "${phalanx[@]}" local --config examples/chaos.yaml --out "$out" \
  --nats-url "$nats_url" --cluster "$cluster" >"$out/summary.txt" 2>"$out/phalanx-local.log" &
local_pid=$!

# The last round the cluster completed, from the run's round log lines (-1 before the first).
last_round() {
  grep '"msg":"round"' "$out/phalanx-local.log" 2>/dev/null | grep -o '"round":[0-9]*' | tail -1 | cut -d: -f2 || true
}
wait_round() {
  while :; do
    local r
    r=$(last_round)
    [ -n "$r" ] && [ "$r" -ge "$1" ] && return 0
    kill -0 "$local_pid" 2>/dev/null || { echo "chaos.sh: phalanx local ended before round $1" >&2; return 1; }
    sleep 0.2
  done
}
chaos() {
  echo "round $(last_round): phalanx chaos $*" | tee -a "$out/chaos.log"
  "${phalanx[@]}" chaos "$@" --operator-key "$out/operator.pem" --nats-url "$nats_url" \
    --cluster "$cluster" | tee -a "$out/chaos.log"
}

wait_round 3
chaos corrupt server-0 --attack reversed
chaos corrupt worker-0 --attack sign-flip
wait_round 15
chaos pause worker-1
wait_round 25
chaos resume worker-1
wait_round 35
chaos corrupt server-0 --attack none
chaos corrupt worker-0 --attack none

status=0
wait "$local_pid" || status=$?
local_pid=''
cat "$out/summary.txt"
exit "$status"
