"""Times GPT-2 training steps in PyTorch + transformers, for comparison with `gpt2-ddp bench`.

    python scripts/bench_pytorch.py                      # the full table (B=4 and 16, T=64, 1 and 2 threads)
    python scripts/bench_pytorch.py --batch-size 4 --seq-len 64 --num-threads 1 --steps 5

A GPT2LMHeadModel from a GPT2Config preset with random weights, in training mode, with dropout
`--dropout P` at its three sites (default 0, as the kernel tables in BENCHMARKS.md), random tokens,
labels = inputs (transformers shifts them), torch.optim.AdamW; `--bf16` wraps forward and loss in
torch.autocast("cpu", dtype=torch.bfloat16), which is what TrainingArguments(bf16=True) does on a CPU. Prints one JSON object per configuration and measurement with the fields `gpt2-ddp bench --json` prints:
  what = "train_step"        forward + backward + AdamW step (zero_grad included)
  what = "forward_backward"  forward + backward only, which is what gpt2-ddp's step does today
ms_per_step is the median of the timed steps, after two untimed warm-up steps. GFLOP/s use the same
count as gpt2-ddp (6 per weight per token plus attention). Optional; needs torch and transformers.
"""
import argparse
import json
import statistics
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

PRESETS = {
    "tiny": dict(n_positions=256, n_embd=64, n_layer=2, n_head=4),
    "gpt2": dict(n_embd=768, n_layer=12, n_head=12),
    "gpt2-medium": dict(n_embd=1024, n_layer=24, n_head=16),
}


def training_flops_per_token(config, seq_len):
    """Same formula as GPT2Config.trainingFlopsPerToken in Sources/GPT2/FlopCount.swift."""
    c, layers, inner = config.n_embd, config.n_layer, config.n_inner or 4 * config.n_embd
    matmul_weights = layers * (3 * c * c + c * c + 2 * c * inner) + config.vocab_size * c
    attention = layers * 2 * 2 * c * seq_len / 2
    return 6 * matmul_weights + 3 * attention


def bench(model_name, batch_size, seq_len, num_threads, steps, seed, dropout, measurements, bf16):
    torch.set_num_threads(num_threads)
    torch.manual_seed(seed)
    config = GPT2Config(**PRESETS[model_name], resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout)
    model = GPT2LMHeadModel(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    tokens = torch.randint(0, config.vocab_size, (batch_size, seq_len))

    def forward_backward():
        # TrainingArguments(bf16=True) on a CPU: autocast around forward and loss, backward outside.
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=tokens, labels=tokens).loss
        loss.backward()

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        forward_backward()
        optimizer.step()

    flops_per_token = training_flops_per_token(config, seq_len)
    for what, step in (("train_step", train_step), ("forward_backward", forward_backward)):
        if what not in measurements:
            continue
        times = []
        for index in range(steps + 2):
            model.zero_grad(set_to_none=True)
            start = time.perf_counter()
            step()
            elapsed = time.perf_counter() - start
            if index >= 2:
                times.append(elapsed)
        median = statistics.median(times)
        tokens_per_second = batch_size * seq_len / median
        print(json.dumps({
            "what": what, "program": "pytorch", "model": model_name, "batch_size": batch_size, "seq_len": seq_len,
            "num_threads": num_threads, "dropout": dropout, "bf16": bf16, "steps": steps, "ms_per_step": round(median * 1000, 2),
            "tokens_per_second": round(tokens_per_second, 2),
            "gflops_per_second": round(flops_per_token * tokens_per_second / 1e9, 2),
        }), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-config", default="gpt2", choices=sorted(PRESETS))
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--seq-len", type=int)
    parser.add_argument("--num-threads", type=int)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dropout", type=float, default=0.0, help="embd_pdrop, attn_pdrop and resid_pdrop")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast around forward and loss, as Trainer's bf16=True")
    parser.add_argument("--what", nargs="+", choices=["train_step", "forward_backward"],
                        default=["train_step", "forward_backward"], help="the measurements to make")
    arguments = parser.parse_args()
    batch_sizes = [arguments.batch_size] if arguments.batch_size else [4, 16]
    seq_lens = [arguments.seq_len] if arguments.seq_len else [64]
    thread_counts = [arguments.num_threads] if arguments.num_threads else [1, 2]
    for num_threads in thread_counts:
        for batch_size in batch_sizes:
            for seq_len in seq_lens:
                bench(arguments.model_config, batch_size, seq_len, num_threads, arguments.steps, arguments.seed, arguments.dropout,
                      arguments.what, arguments.bf16)


if __name__ == "__main__":
    main()
