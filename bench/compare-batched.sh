#!/usr/bin/env bash
# Side-by-side batched decode on cpu: `halyard bench --batch N` against llama.cpp's
# llama-batched-bench, same GGUF files, same threads, alternating runs, then medians
# (bench/summarize-batched.py).
#   LLAMA_BATCHED_BENCH=/path/to/llama-batched-bench bash bench/compare-batched.sh OUT_DIR MODEL.gguf...
# llama-batched-bench is built beside the project (never in it); this script only runs it.
#
# What is compared, for each N in $NPL (default "1 8"):
# - halyard: `bench -d cpu --batch N -p PP -n TG -r REPEATS`: N sequences in one context, each
#   prefilled with its own random PP-token prompt (one step per sequence, not timed), then TG
#   steps of N tokens (one per sequence, every token asking for logits), timed from the first
#   step to the last: aggregate t/s = N x TG / that time. The median of REPEATS runs after one
#   warm-up run.
# - llama.cpp: `llama-batched-bench -npp PP -ntg TG -npl N,N,...` (REPEATS times N), prompts not
#   shared (no -pps): every sequence gets its own random PP-token prompt, all prefilled in one
#   decode (not part of S_TG), then TG decodes of N tokens (one per sequence, logits for each),
#   timed: S_TG t/s = N x TG / that time, the same quantity as halyard's aggregate t/s. The KV
#   cache is llama.cpp's default per-sequence one (not -kvu), f16, flash attention "auto"; the
#   context is -c N x (PP + TG) (llama.cpp rounds each sequence's share up to 256). The median of
#   the REPEATS lines; its 16-token warm-up runs before them.
# Both run with THREADS threads (default 2). Rounds alternate which tool goes first. After the
# rounds, one `halyard bench --batch KV_N --mixed` run reports the KV bytes the paged cache holds
# for KV_N sequences of mixed prompt lengths (ceil(KV_PP (i+1) / KV_N)) against the f32 per-slot
# layout of before (KV_N x KV_CTX x kv_dim x 4 B x 2 x layers); KV_N=0 skips it.
set -euo pipefail
out=${1:?output directory}; shift
[ $# -ge 1 ] || { echo "usage: $0 OUT_DIR MODEL.gguf..." >&2; exit 2; }
halyard=${HALYARD:-build/ci/bin/halyard}
llama=${LLAMA_BATCHED_BENCH:?set LLAMA_BATCHED_BENCH to a llama-batched-bench binary}
threads=${THREADS:-2}
rounds=${ROUNDS:-3}
repeats=${REPEATS:-3}
npl=${NPL:-1 8}
pp=${PP:-64}
tg=${TG:-32}
kv_n=${KV_N:-8}
kv_pp=${KV_PP:-512}
kv_ctx=${KV_CTX:-4096}
mkdir -p "$out"
{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git rev-parse HEAD)$(git diff --quiet HEAD -- . || echo ' (with local changes)')"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
  echo "cores: $(nproc)"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "threads: $threads, rounds: $rounds, repeats: $repeats, N: $npl, prompt: $pp, generated: $tg"
  echo "llama-batched-bench: $llama"
  echo "models: $*"
} > "$out/machine.txt"

run_llama() {  # model name n round
  local reps ctx
  reps=$(printf "$3,%.0s" $(seq 1 "$repeats")); reps=${reps%,}
  ctx=$(( $3 * (pp + tg) ))
  "$llama" -m "$1" -t "$threads" -npp "$pp" -ntg "$tg" -npl "$reps" -c "$ctx" --output-format jsonl \
    > "$out/llama-$2-n$3-$4.jsonl" 2> "$out/llama-$2-n$3-$4.log"
}
run_halyard() {  # model name n round
  "$halyard" bench -m "$1" -d cpu -t "$threads" -p "$pp" -n "$tg" -r "$repeats" --batch "$3" \
    --json "$out/halyard-$2-n$3-$4.json" > "$out/halyard-$2-n$3-$4.md" 2> /dev/null
}
for round in $(seq 1 "$rounds"); do
  for model in "$@"; do
    name=$(basename "$model" .gguf)
    for n in $npl; do
      echo "round $round, $name, N = $n (load $(cut -d' ' -f1 /proc/loadavg))" >&2
      echo "round $round $name N=$n load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/load.txt"
      if [ $((round % 2)) -eq 1 ]; then
        run_llama "$model" "$name" "$n" "$round"; run_halyard "$model" "$name" "$n" "$round"
      else
        run_halyard "$model" "$name" "$n" "$round"; run_llama "$model" "$name" "$n" "$round"
      fi
    done
  done
done
for model in "$@"; do
  [ "$kv_n" -gt 0 ] || break  # KV_N=0: no KV report
  name=$(basename "$model" .gguf)
  "$halyard" bench -m "$model" -d cpu -t "$threads" -p "$kv_pp" -n "$tg" -r 1 --batch "$kv_n" --mixed -c "$kv_ctx" \
    --json "$out/kv-$name.json" > "$out/kv-$name.md" 2> /dev/null
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/machine.txt"
