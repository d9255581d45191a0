#!/usr/bin/env bash
# The rate-limited two-host rehearsal of BENCHMARKS.md (root): GPT-2 124M (random weights) at a
# global batch of 16 on full 256-token blocks of Tiny Shakespeare and on the recipe's ideas;
# one host (1 rank x 1 thread) first, then launch/rehearse-cluster at 1 and 10 Gb/s (tc tbf),
# replicated and ZeRO-1, with the gradients reduced after backward or by the communication
# thread. Prints one JSON line per run: median tokens/s after the first step, wait per step.
#   scripts/bench_rehearsal.sh [MODEL_DIR] [IDEAS_FILE]
set -uo pipefail
cd "$(dirname "$0")/.."
model=${1:-/tmp/gpt2-random} ideas=${2:-/tmp/ideas3000.txt}
[ -d "$model" ] || .build/release/gpt2-ddp init --model-config gpt2 --output-dir "$model" >/dev/null
[ -f "$ideas" ] || head -3000 ../shared/data/ideas.txt > "$ideas"
binary=$(pwd)/.build/release/gpt2-ddp
work=$(mktemp -d)
report() {  # SETUP OUTPUT_DIR STEPS
    python3 - "$@" <<'PY'
import json, statistics, sys
records = [json.loads(line) for line in open(sys.argv[2] + "/metrics.jsonl")]
speeds = [r["tokens_per_second"] for r in records if "loss" in r]
wait = [r for r in records if "train_loss" in r][-1].get("allreduce_wait_seconds")
print(json.dumps({"setup": sys.argv[1], "tokens_per_second": statistics.median(speeds[1:]), "per_step": speeds,
                  "wait_ms_per_step": None if wait is None else round(1000 * wait / int(sys.argv[3]))}), flush=True)
PY
}
for workload in blocks recipe; do
    if [ $workload = blocks ]; then data=(--train-file ../shared/data/tinyshakespeare.txt --packing --block-size 256); steps=3
    else data=(--train-file "$ideas"); steps=5; fi
    common=(train --model-name-or-path "$model" --tokenizer ../shared/data/gpt2-tokenizer "${data[@]}" --validation-split 0
            --max-steps $steps --logging-steps 1 --eval-strategy no --save-strategy no --learning-rate 5e-5 --seed 1
            --cache-dir "$work/cache-$workload" --per-device-train-batch-size 8 --num-threads 1)
    "$binary" "${common[@]}" --output-dir "$work/one-$workload" >/dev/null 2>&1
    report "$workload one host, 1 rank x 1 thread" "$work/one-$workload" $steps
    for rate in 1gbit 10gbit; do
        for setup in "replicated|--zero-stage 0" "replicated+thread|--zero-stage 0 --overlap-allreduce" \
                     "zero1|--zero-stage 1" "zero1+thread|--zero-stage 1 --overlap-allreduce"; do
            name=${setup%%|*} flags=${setup#*|}
            out=$work/$workload-$rate-$name
            # shellcheck disable=SC2086
            LINK_RATE=$rate GPT2_DDP=$binary bash launch/rehearse-cluster "${common[@]}" $flags --output-dir "$out" >"$out.log" 2>&1 \
                || { echo "$workload $rate $name failed: $(tail -1 "$out.log")"; continue; }
            report "$workload $rate 2 hosts $name" "$out" $steps
        done
    done
done
rm -rf "$work"
