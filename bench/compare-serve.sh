#!/usr/bin/env bash
# Side-by-side serving benchmark: `halyard serve` and llama.cpp's llama-server on the same GGUF,
# same threads, each started fresh per concurrency level with room for exactly N running
# sequences (--max-running N / --parallel N), alternating which goes first each round; runs
# bench/serve-load.py against each, then prints medians and ratios (bench/summarize-serve.py).
#   bash bench/compare-serve.sh [OUT_DIR]
# Environment (defaults in brackets):
#   HALYARD_BIN [build/release/bin/halyard]   LLAMA_SERVER [/work/llama-build/bin/llama-server]
#   MODEL [$HALYARD_TEST_MODEL or the default SmolLM2 GGUF]  THREADS [2]  CONCURRENCY [1,8]
#   ROUNDS [3]  MAX_TOKENS [128]  REQUESTS [4 per client]  CTX [1024 tokens per sequence]
#   SERVERS ["halyard llama"]: drop one to run only the other.  PYTHON [build/server-venv/bin/python]
#   HALYARD_EXTRA_ARGS / LLAMA_EXTRA_ARGS: appended to the server command lines.
#   LOAD_EXTRA_ARGS: appended to serve-load.py (e.g. --ignore-eos, --endpoint completions).
# llama-server is built beside the project (never in it); this script only runs it.
set -euo pipefail
out=${1:-build/compare-serve/$(date -u +%Y%m%dT%H%M%SZ)}
halyard=${HALYARD_BIN:-build/release/bin/halyard}
llama_server=${LLAMA_SERVER:-/work/llama-build/bin/llama-server}
model=${MODEL:-${HALYARD_TEST_MODEL:-/root/.cache/halyard/models/SmolLM2-135M-Instruct.Q4_1.gguf}}
threads=${THREADS:-2}
concurrency=${CONCURRENCY:-1,8}
rounds=${ROUNDS:-3}
max_tokens=${MAX_TOKENS:-128}
requests=${REQUESTS:-4}
ctx=${CTX:-1024}
servers=${SERVERS:-halyard llama}
python=${PYTHON:-build/server-venv/bin/python}
here=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH="$(dirname "$llama_server")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# The two command lines (into the array cmd); everything server-specific is here.
# *_EXTRA_ARGS are split on spaces on purpose.
halyard_cmd() { # PORT N
  cmd=("$halyard" serve -m "$model" -d cpu -t "$threads" --host 127.0.0.1 --port "$1"
    --max-running "$2" -c "$ctx" ${HALYARD_EXTRA_ARGS:-})
}
llama_cmd() { # PORT N
  cmd=("$llama_server" -m "$model" -t "$threads" -tb "$threads" --host 127.0.0.1 --port "$1"
    --parallel "$2" -c $((ctx * $2)) ${LLAMA_EXTRA_ARGS:-})
}

for s in $servers; do
  case $s in
    halyard) [[ -x $halyard ]] || { echo "compare-serve: $halyard is not executable (set HALYARD_BIN)" >&2; exit 2; } ;;
    llama) [[ -x $llama_server ]] || { echo "compare-serve: $llama_server is not executable (set LLAMA_SERVER)" >&2; exit 2; } ;;
    *) echo "compare-serve: unknown server '$s' in SERVERS (halyard, llama)" >&2; exit 2 ;;
  esac
done
[[ -f $model ]] || { echo "compare-serve: model $model not found (set MODEL)" >&2; exit 2; }
mkdir -p "$out"

free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

pid=
stop_server() {
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=
}
trap stop_server EXIT

# Starts server $1 with N=$2 on a free port; sets pid and url; waits (bounded) for /health.
start_server() {
  local port cmd
  port=$(free_port)
  "${1}_cmd" "$port" "$2"
  echo "${cmd[*]}" > "$out/$1-n$2.cmd"
  "${cmd[@]}" > "$out/$1-n$2-r$round.log" 2>&1 &
  pid=$!
  url=http://127.0.0.1:$port
  for _ in $(seq 1 600); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "compare-serve: $1 exited while starting; see $out/$1-n$2-r$round.log" >&2; pid=; exit 1
    fi
    if [[ $(curl -s -o /dev/null -w '%{http_code}' "$url/health") == 200 ]]; then return 0; fi
    sleep 0.2
  done
  echo "compare-serve: $1 not healthy after 120 s; see $out/$1-n$2-r$round.log" >&2; exit 1
}

{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "cores: $(nproc)"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "model: $model"
  echo "threads: $threads, concurrency: $concurrency, rounds: $rounds, max_tokens: $max_tokens, requests per client: $requests, ctx per sequence: $ctx"
  echo "servers: $servers"
  for s in $servers; do
    case $s in
      halyard) echo "halyard: $halyard ($("$halyard" --version 2>&1 | head -1 || true))" ;;
      llama) echo "llama-server: $llama_server ($("$llama_server" --version 2>&1 | grep -m1 version || true))" ;;
    esac
  done
} | tee "$out/machine.txt"

order=($servers)
for round in $(seq 1 "$rounds"); do
  for n in ${concurrency//,/ }; do
    for s in "${order[@]}"; do
      start_server "$s" "$n"
      echo "round $round, $s, concurrency $n ($url)"
      "$python" "$here/serve-load.py" --url "$url" --concurrency "$n" --requests-per-client "$requests" \
        --max-tokens "$max_tokens" --warmup 1 --server-pid "$pid" --json "$out/$s-n$n-r$round.json" ${LOAD_EXTRA_ARGS:-}
      stop_server
    done
  done
  # Alternate who goes first, so neither always runs on the cooler (or warmer) machine.
  order=($(printf '%s\n' "${order[@]}" | tac))
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/machine.txt"
"$python" "$here/summarize-serve.py" "$out" | tee "$out/summary.txt"
