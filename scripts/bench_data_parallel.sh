#!/usr/bin/env bash
# Training throughput of GPT-2 124M (random weights) on real startup ideas at the recipe's global
# batch of 16: 1 rank x 2 threads against 2 ranks x 1 thread (launch/local), the latter with and
# without overlapping the gradient allreduce with backward, and with ZeRO-1. Rounds alternate the
# four set-ups.
# Flags after STEPS go to every run (e.g. --packing --block-size 256 for full 256-token blocks).
#   scripts/bench_data_parallel.sh MODEL_DIR TOKENIZER_DIR TEXT_FILE [ROUNDS] [STEPS] [TRAIN FLAGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
model=$1 tokenizer=$2 ideas=$3 rounds=${4:-3} steps=${5:-8}
shift $(( $# < 5 ? $# : 5 ))
bin=.build/release/gpt2-ddp
work=$(mktemp -d)
common=(train --model-name-or-path "$model" --tokenizer "$tokenizer" --train-file "$ideas" --validation-split 0
        --max-steps "$steps" --logging-steps 1 --eval-strategy no --save-steps 100000 --learning-rate 5e-5 --seed 1
        --cache-dir "$work/cache" "$@")
report() {  # median tokens/s over the steps after the first, and the allreduce wait per step
    python3 - "$1" "$2" "$steps" <<'PY'
import json, statistics, sys
records = [json.loads(line) for line in open(sys.argv[2] + "/metrics.jsonl")]
speeds = [r["tokens_per_second"] for r in records if "loss" in r][1:]
summary = [r for r in records if "train_loss" in r][-1]
wait = summary.get("allreduce_wait_seconds")
print(json.dumps({"setup": sys.argv[1], "tokens_per_second": statistics.median(speeds),
                  "allreduce_wait_ms_per_step": None if wait is None else round(1000 * wait / int(sys.argv[3]), 1)}))
PY
}
for round in $(seq "$rounds"); do
    $bin "${common[@]}" --num-threads 2 --per-device-train-batch-size 16 --output-dir "$work/a$round" >/dev/null 2>&1
    report "1 rank x 2 threads" "$work/a$round"
    bash launch/local "${common[@]}" --per-device-train-batch-size 8 --overlap-allreduce --output-dir "$work/b$round" >/dev/null 2>&1
    report "2 ranks x 1 thread, overlapped allreduce" "$work/b$round"
    bash launch/local "${common[@]}" --per-device-train-batch-size 8 --output-dir "$work/c$round" >/dev/null 2>&1
    report "2 ranks x 1 thread, allreduce after backward" "$work/c$round"
    bash launch/local "${common[@]}" --per-device-train-batch-size 8 --zero-stage 1 --output-dir "$work/d$round" >/dev/null 2>&1
    report "2 ranks x 1 thread, ZeRO-1 (reduce-scatter and all-gather after backward)" "$work/d$round"
done
rm -rf "$work"
