#!/usr/bin/env bash
# Throughput of `magnetic send` into Postfix's smtp-sink on loopback, against Postfix's own
# smtp-source pushing pre-made messages of the same size into the same sink (20 reused
# sessions), in the same run. Not a test: it prints figures for bench/README.md.
#
#   bench/send_bench.sh [N]          N messages per run (default 100000)
#   MILLION=1 bench/send_bench.sh    also the peak RSS of a 1,000,000-recipient campaign
#
# Everything listens on 127.0.0.1; every run is bounded by its message count.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
RSA_N=${RSA_N:-20000}
BIN=build/magnetic
[ -x "$BIN" ] || { echo "build first: make build" >&2; exit 1; }
work=$(mktemp -d /tmp/magnetic-bench-XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
/usr/sbin/smtp-sink -u nobody 127.0.0.1:$port 1024 &
sleep 0.3

cat > "$work/t.json" <<'JSON'
{"Subject": "Your {{plan}} summary for {{month}}, {{first_name}}",
 "Text": "Hello {{first_name}} {{last_name}},\n\nHere is your summary for {{month}}. You are on the {{plan}} plan in {{city}}.\nThis paragraph pads the message to a realistic size for a newsletter: lorem ipsum dolor sit amet,\nconsectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.\n\n-- The Example team, 123 Example Street, Springfield\n",
 "Html": "<html><body><h1>Hello {{first_name}}</h1><p>Your summary for {{month}}: plan <b>{{plan}}</b>, city {{city}}.</p><p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore.</p><p>123 Example Street, Springfield</p></body></html>"}
JSON
python3 - "$work/list.csv" "$N" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    f.write("email,first_name,last_name,month,plan,city\n")
    for i in range(n):
        f.write(f"user{i}@d{i % 20}.example,First{i},Last{i},December,pro,Springfield\n")
PY
$BIN dkim keygen --domain example.com --selector b1 --algorithm ed25519 --out "$work/ed.pem" >/dev/null 2>&1
$BIN dkim keygen --domain example.com --selector b2 --algorithm rsa --out "$work/rsa.pem" >/dev/null 2>&1

# One campaign; prints "msg/s cpu_s peak_rss_mb".
run_send() {  # key list count
  rm -f "$work/spool.db"*
  /usr/bin/time -f "%U %S %M" -o "$work/time" $BIN send --template "$work/t.json" --recipients "$2" \
    --from "Bench <bench@example.com>" --relay 127.0.0.1:$port --dkim-domain example.com \
    --dkim-selector b --dkim-key "$1" --unsubscribe-url "https://example.com/u/{token}" \
    --spool "$work/spool.db" --report "$work/report.json" --no-progress --domain-connections 20 \
    --log-level warn >/dev/null
  python3 - "$work/report.json" "$work/time" "$3" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); u, s, m = open(sys.argv[2]).read().split()
assert r["delivered"] == int(sys.argv[3]), r["delivered"]
print(f'{r["messages_per_second"]:.0f} {float(u) + float(s):.1f} {int(m) / 1024:.0f}')
PY
}

# A message of the same size for smtp-source.
$BIN render --template "$work/t.json" --data <(echo '{"email":"user1@d1.example","first_name":"First1","last_name":"Last1","month":"December","plan":"pro","city":"Springfield"}') \
  --from "Bench <bench@example.com>" --unsubscribe-url "https://example.com/u/{token}" > "$work/msg.eml"
size=$(( $(wc -c < "$work/msg.eml") + 120 ))  # plus the DKIM-Signature field

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "messages: $N, about $size bytes each"
for i in 1 2 3; do
  start=$(date +%s.%N)
  /usr/sbin/smtp-source -d -s 20 -m "$N" -F "$work/msg.eml" -f bench@example.com -t user@d1.example 127.0.0.1:$port
  end=$(date +%s.%N)
  python3 -c "print(f'smtp-source run $i: {$N / ($end - $start):.0f} msg/s')"
  echo "$N / ($end - $start)" | bc -l >> "$work/peer"
done
for i in 1 2 3; do
  read -r mps cpu rss < <(run_send "$work/ed.pem" "$work/list.csv" "$N")
  echo "magnetic ed25519 run $i: $mps msg/s, $cpu CPU s, peak RSS $rss MB"
  echo "$mps" >> "$work/ed"
done
head -n "$((RSA_N + 1))" "$work/list.csv" > "$work/rsa.csv"
for i in 1 2 3; do
  read -r mps cpu rss < <(run_send "$work/rsa.pem" "$work/rsa.csv" "$RSA_N")
  echo "magnetic rsa-sha256 run $i ($RSA_N messages): $mps msg/s, $cpu CPU s, peak RSS $rss MB"
  echo "$mps" >> "$work/rsa"
done
openssl speed -seconds 3 -multi "$(nproc)" rsa2048 2>/dev/null | awk '/^rsa 2048/ {print "openssl speed rsa2048, all cores: " $6 " sign/s"; print $6 > "'"$work/ossl"'"}'
python3 - "$work" <<'PY'
import statistics, sys, os
w = sys.argv[1]
med = lambda f: statistics.median(float(x) for x in open(os.path.join(w, f)))
peer, ed, rsa = med("peer"), med("ed"), med("rsa")
print(f"median: smtp-source {peer:.0f} msg/s, magnetic ed25519 {ed:.0f} msg/s, ratio {ed / peer:.2f}")
if os.path.exists(os.path.join(w, "ossl")):
    o = float(open(os.path.join(w, "ossl")).read())
    print(f"median: magnetic rsa-sha256 {rsa:.0f} msg/s = {100 * rsa / o:.0f}% of openssl's {o:.0f} sign/s")
PY

if [ "${MILLION:-0}" = 1 ]; then
  python3 - "$work/million.csv" 1000000 <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("email,first_name,last_name,month,plan,city\n")
    for i in range(int(sys.argv[2])):
        f.write(f"user{i}@d{i % 20}.example,First{i},Last{i},December,pro,Springfield\n")
PY
  read -r mps cpu rss < <(run_send "$work/ed.pem" "$work/million.csv" 1000000)
  echo "magnetic 1,000,000 recipients, ed25519: $mps msg/s, $cpu CPU s, peak RSS $rss MB"
fi
