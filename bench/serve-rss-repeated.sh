#!/usr/bin/env bash
# Resident memory of one halyard-server over repeated 64-client runs (issue 14's "RSS after the
# run within 5% of before"): starts the server, records its VmRSS once ready (after start-up and
# warm-up), then runs bench/serve-load.py RUNS times against it, recording VmRSS before and after
# each run (serve-load's own figures, taken as the last answer arrives) and again 1 s later.
# Usage: OUT=dir [RUNS=8] [SERVER_ARGS="..."] bash bench/serve-rss-repeated.sh
# Writes OUT/machine.txt, OUT/server.log, OUT/runN.json and runN.txt, and OUT/summary.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to a results directory}"
RUNS=${RUNS:-8}
PORT=${PORT:-18231}
SERVER=${SERVER:-build/ci/bin/halyard-server}
SERVER_ARGS=${SERVER_ARGS:--d cpu -t 2 -c 1024 --max-running 8 --max-waiting 32}
python=$(bash scripts/server-venv.sh)
model=${HALYARD_TEST_MODEL:-$(bash scripts/fetch-model.sh)}
mkdir -p "$OUT"
rss() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
# shellcheck disable=SC2086
"$SERVER" -m "$model" --port "$PORT" $SERVER_ARGS 2>"$OUT/server.log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 600); do
  grep -q "ready on" "$OUT/server.log" && break
  kill -0 $pid || { cat "$OUT/server.log"; exit 1; }
  sleep 0.2
done
sleep 1
{
  echo "date: $(date -u +%FT%TZ) commit: $(git rev-parse HEAD) cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)" \
    "load: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "server: $SERVER -m $model --port $PORT $SERVER_ARGS"
  echo "each run: bench/serve-load.py --concurrency 64 --requests-per-client 3 --max-tokens 32 --ignore-eos --server-pid PID"
} >"$OUT/machine.txt"
echo "ready rss_mib $(rss $pid)" >"$OUT/summary.txt"
for i in $(seq "$RUNS"); do
  "$python" bench/serve-load.py --url "http://127.0.0.1:$PORT" --concurrency 64 --requests-per-client 3 \
    --max-tokens 32 --ignore-eos --server-pid $pid --json "$OUT/run$i.json" >"$OUT/run$i.txt"
  sleep 1
  "$python" - "$OUT/run$i.json" "$i" "$(rss $pid)" >>"$OUT/summary.txt" <<'PY'
import json, sys
level = json.load(open(sys.argv[1]))["levels"][0]
b, a = level["server_rss_mib_before"], level["server_rss_mib_after"]
print(f"run {sys.argv[2]} rss_before_mib {b} rss_after_mib {a} ({(a - b) / b * 100:+.1f}%) "
      f"rss_1s_later_mib {sys.argv[3]} errors {level['errors']} succeeded {level['succeeded']}")
PY
done
cat "$OUT/summary.txt"
