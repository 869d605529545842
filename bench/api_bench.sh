#!/usr/bin/env bash
# The SES v2 API of `magnetic serve` under load: CLIENTS concurrent clients sending signed
# SendBulkEmail calls of 50 entries each, while the service delivers to Postfix's smtp-sink on
# loopback. Prints entries accepted/s, request latency p50/p99 and the end-to-end delivery rate
# (until the sink has every accepted message). Not a test: it prints figures for bench/README.md.
#
#   bench/api_bench.sh [REQUESTS]      REQUESTS calls per run (default 2000, i.e. 100,000 messages)
#   CLIENTS=32 RUNS=3 bench/api_bench.sh
#   KEEP=1 LOG_LEVEL=info bench/api_bench.sh   keep the work folder (logs, data) afterwards
#   DKIM=ed25519 bench/api_bench.sh   the identity signs with an Ed25519 key (BYODKIM) instead
#   RATE=5000 bench/api_bench.sh      open loop: offer 5,000 entries/s in all, whatever the answers
#                                     take (latency counts from when each request was due)
#
# Everything listens on 127.0.0.1; every run is bounded by its request count and by MAX_SECONDS
# of sending plus SINK_TIMEOUT of waiting for delivery.
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${1:-2000}
CLIENTS=${CLIENTS:-32}
RUNS=${RUNS:-3}
MAX_SECONDS=${MAX_SECONDS:-120}
SINK_TIMEOUT=${SINK_TIMEOUT:-300}
BIN=build/magnetic
PY=/usr/bin/python3
[ -x "$BIN" ] || { echo "build first: make build" >&2; exit 1; }
"$BIN" --help | grep -q '^  serve ' || { echo "$BIN has no serve subcommand" >&2; exit 1; }
work=$(mktemp -d /tmp/magnetic-api-bench-XXXXXX)
chmod 0711 "$work"
# KEEP=1 keeps the work folder (logs, data directories) for a look afterwards.
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; [ "${KEEP:-0}" = 1 ] || rm -rf "$work"' EXIT

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
json_field() { $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "load generator alone, against a stand-in that only answers:"
$PY bench/api_bench.py selftest --clients "$CLIENTS" --requests 4000 --max-seconds 60

# The service's quota and rate would refuse a benchmark's worth of mail: raise both.
cat > "$work/serve.toml" <<'TOML'
[delivery]
domain_connections = 20
[quota]
max_24_hour_send = 100000000
max_send_rate = 10000000
TOML

for run in $(seq 1 "$RUNS"); do
  dir="$work/run$run"
  mkdir -p "$dir"
  sink_port=$(free_port)
  /usr/sbin/smtp-sink -c -u nobody "127.0.0.1:$sink_port" 1024 > "$dir/sink.counter" 2>/dev/null &
  sink_pid=$!
  routes=()
  for d in $(seq 0 19); do routes+=(--route "d$d.example=127.0.0.1:$sink_port"); done
  "$BIN" keys create --data "$dir/data" --name bench > "$dir/key.json"
  key_id=$(json_field "$dir/key.json" AccessKeyId)
  secret=$(json_field "$dir/key.json" SecretAccessKey)
  "$BIN" --log-level "${LOG_LEVEL:-warn}" serve --data "$dir/data" --api-listen 127.0.0.1:0 \
    --smtp-listen 127.0.0.1:0 --config "$work/serve.toml" "${routes[@]}" > "$dir/serve.log" 2>&1 &
  serve_pid=$!
  for _ in $(seq 1 300); do [ -s "$dir/data/listen.json" ] && break; sleep 0.1; done
  [ -s "$dir/data/listen.json" ] || { echo "serve did not start:"; cat "$dir/serve.log"; exit 1; }
  sleep 0.2  # listen.json may be written in more than one step
  api_port=$(json_field "$dir/data/listen.json" api | cut -d: -f2)
  $PY bench/api_bench.py setup --api "$api_port" --key-id "$key_id" --secret "$secret" --dkim "${DKIM:-rsa}"
  /usr/bin/time -f "%U %S %M" -o "$dir/time" \
    $PY bench/api_bench.py load --api "$api_port" --key-id "$key_id" --secret "$secret" \
    --clients "$CLIENTS" --requests "$REQUESTS" --max-seconds "$MAX_SECONDS" --rate "${RATE:-0}" \
    --sink-counter "$dir/sink.counter" --sink-timeout "$SINK_TIMEOUT" > "$dir/result.json"
  if kill -TERM "$serve_pid" 2>/dev/null; then
    wait "$serve_pid" || echo "run $run: serve exited $? after SIGTERM"
  else
    wait "$serve_pid" || echo "run $run: serve died during the run (exit $?); the end of its log:"
    tail -n 20 "$dir/serve.log"
  fi
  kill "$sink_pid"
  wait "$sink_pid" 2>/dev/null || true
  $PY - "$dir/result.json" "$run" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"run {sys.argv[2]}: {r['requests']} requests from {r['clients']} clients in {r['seconds']} s, "
      f"{r['entries_accepted']} entries accepted: {r['requests_per_s']} req/s, "
      f"{r['entries_accepted_per_s']} entries/s, latency p50 {r['latency_p50_ms']} ms, "
      f"p99 {r['latency_p99_ms']} ms; errors {r['errors'] or 'none'}; "
      f"{r['delivered']} delivered in {r['end_to_end_seconds']} s = {r['delivered_per_s']} msg/s"
      + f"; {r['backlog_when_sent']} accepted and undelivered when sending stopped"
      + ("" if r["delivered_all"] else " (NOT ALL DELIVERED in time)"))
PY
  cp "$dir/result.json" "$work/result$run.json"
done

$PY - "$work" "$RUNS" <<'PY'
import json, os, statistics, sys
rs = [json.load(open(os.path.join(sys.argv[1], f"result{i}.json"))) for i in range(1, int(sys.argv[2]) + 1)]
med = lambda k: statistics.median(r[k] for r in rs)
print(f"median of {len(rs)}: {med('entries_accepted_per_s'):.0f} entries accepted/s, "
      f"{med('requests_per_s'):.1f} req/s, p50 {med('latency_p50_ms'):.1f} ms, p99 {med('latency_p99_ms'):.1f} ms, "
      f"{med('delivered_per_s'):.0f} delivered msg/s end to end")
PY
