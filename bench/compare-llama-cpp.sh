#!/usr/bin/env bash
# Side-by-side CPU benchmark: halyard bench and llama.cpp's llama-bench on the same GGUF files,
# same thread count, alternating runs, then medians (bench/summarize-comparison.py).
#   LLAMA_BENCH=/path/to/llama-bench bash bench/compare-llama-cpp.sh OUT_DIR MODEL.gguf...
# llama-bench is built beside the project (never in it); this script only runs it.
set -euo pipefail
out=${1:?output directory}; shift
halyard=${HALYARD:-build/ci/bin/halyard}
triad=${TRIAD:-build/ci/bin/halyard-triad}
llama_bench=${LLAMA_BENCH:?set LLAMA_BENCH to a llama-bench binary}
threads=${THREADS:-2}
rounds=${ROUNDS:-3}
mkdir -p "$out"
{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git rev-parse HEAD)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
  echo "cores: $(nproc)"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "threads: $threads, rounds: $rounds, llama-bench: $llama_bench"
} > "$out/machine.txt"
"$triad" --threads 1 > "$out/triad-1.json"
"$triad" --threads "$threads" > "$out/triad-$threads.json"
for round in $(seq 1 "$rounds"); do
  for model in "$@"; do
    name=$(basename "$model" .gguf)
    "$llama_bench" -m "$model" -t "$threads" -p 512 -n 128 -r 3 -o json > "$out/llama-$name-$round.json" 2>/dev/null
    "$halyard" bench -m "$model" -t "$threads" -p 512 -n 128 -r 3 --json "$out/halyard-$name-$round.json" > /dev/null 2>&1
  done
done
"$triad" --threads "$threads" > "$out/triad-$threads-after.json"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/machine.txt"
