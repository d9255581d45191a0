"""Times transformers' generate() on GPT-2 for comparison with `gpt2-ddp bench --generate`.

    python scripts/bench_generate_reference.py                       # batch 1 and 8, fp32, 1 thread
    python scripts/bench_generate_reference.py --batch-sizes 1 --dtypes fp32 bf16 --num-threads 1

A GPT2LMHeadModel from GPT2Config() (124M) with random weights, greedy decoding from the bos token
with the key/value cache, min_new_tokens = max_new_tokens so that every sequence runs the full length
(as gpt2-ddp's benchmark does). bf16 is model.to(torch.bfloat16): unlike gpt2-ddp's bf16 (weights
stored as bfloat16, arithmetic in fp32) PyTorch then computes in bfloat16 too. Prints one JSON object
per configuration with the fields gpt2-ddp prints: ms_per_step is per new token (the median of the
timed generate() calls divided by the new tokens), tokens_per_second counts every sequence's tokens.
Optional; needs torch and transformers.
"""
import argparse
import json
import statistics
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel


def bench(batch_size, dtype, new_tokens, num_threads, steps, seed):
    torch.set_num_threads(num_threads)
    torch.manual_seed(seed)
    config = GPT2Config()
    model = GPT2LMHeadModel(config).eval()
    if dtype == "bf16":
        model = model.to(torch.bfloat16)
    inputs = torch.full((batch_size, 1), config.bos_token_id)
    mask = torch.ones_like(inputs)
    times = []
    with torch.inference_mode():
        for index in range(steps + 1):
            start = time.perf_counter()
            output = model.generate(inputs, attention_mask=mask, do_sample=False, max_new_tokens=new_tokens,
                                    min_new_tokens=new_tokens, pad_token_id=config.eos_token_id)
            elapsed = time.perf_counter() - start
            assert output.shape == (batch_size, 1 + new_tokens)
            if index > 0:
                times.append(elapsed)
    seconds = statistics.median(times)
    print(json.dumps({"what": "generate", "program": "transformers", "model": "gpt2", "weights_dtype": dtype,
                      "new_tokens": new_tokens, "batch_size": batch_size, "num_threads": num_threads, "steps": steps,
                      "ms_per_step": round(seconds / new_tokens * 1000, 3),
                      "tokens_per_second": round(batch_size * new_tokens / seconds, 3)}), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--dtypes", nargs="+", default=["fp32"], choices=["fp32", "bf16"])
    parser.add_argument("--max-new-tokens", type=int, default=50)
    parser.add_argument("--num-threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args()
    for dtype in arguments.dtypes:
        for batch_size in arguments.batch_sizes:
            bench(batch_size, dtype, arguments.max_new_tokens, arguments.num_threads, arguments.steps, arguments.seed)


if __name__ == "__main__":
    main()
