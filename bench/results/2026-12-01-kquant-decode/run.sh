#!/bin/bash
# alternating decode-only rounds: llama-bench, halyard before, halyard after; same files, 2 threads
out=/tmp/kq-e2e2; rounds=${ROUNDS:-2}
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2) model $(grep -m1 '^model\s' /proc/cpuinfo | cut -d: -f2)" > $out/machine.txt
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) $(date -u +%T)" >> $out/machine.txt
for round in $(seq 1 $rounds); do
  for model in "$@"; do
    name=$(basename $model .gguf)
    /work/llama-build/bin/llama-bench -m $model -t 2 -p 0 -n 32 -r 2 -o json > $out/llama-$name-$round.json 2>/dev/null
    /tmp/kq-base/bin/halyard bench -m $model -t 2 -p 8 -n 32 -r 2 --json $out/base-$name-$round.json > /dev/null 2>&1
    /tmp/kq-new5/halyard bench -m $model -t 2 -p 8 -n 32 -r 2 --json $out/new-$name-$round.json > /dev/null 2>&1
    echo "$round $name done $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)" >> $out/progress.txt
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg) $(date -u +%T)" >> $out/machine.txt
