"""Runs `gpt2-ddp bench` and scripts/bench_pytorch.py on the same training steps, alternating the
two programs round by round so that both see the same machine load, and prints Markdown tables of
the medians and their ratios (the figures in BENCHMARKS.md).

    swift build -c release
    python scripts/bench_side_by_side.py --rounds 3 --steps 5 --raw runs/bench.jsonl
    python scripts/bench_side_by_side.py --matmul      # only gpt2-ddp's matrix multiplication table
    python scripts/bench_side_by_side.py --generate --rounds 3   # generation against transformers' generate()
    python scripts/bench_side_by_side.py --dropout-cost 0.1 --batch-sizes 16   # each step with dropout 0.1 and 0
    python scripts/bench_side_by_side.py --matmul-paths avx2 avx512   # gpt2-ddp's step on each matmul path
    python scripts/bench_side_by_side.py --bf16 --rounds 2 --steps 3  # fp32 and bf16 (--bf16, autocast) steps

Steps run with dropout `--dropout P` in both programs (default 0: the kernels' comparison).

Needs torch and transformers for the PyTorch side (not for --matmul). Optional, never in CI.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWIFT = [os.path.join(ROOT, ".build", "release", "gpt2-ddp"), "bench", "--json"]
PYTORCH = [sys.executable, os.path.join(ROOT, "scripts", "bench_pytorch.py")]
GENERATE_REFERENCE = [sys.executable, os.path.join(ROOT, "scripts", "bench_generate_reference.py")]


def run_json(command, raw, environment=None):
    output = subprocess.run(command, check=True, capture_output=True, text=True,
                            env=dict(os.environ, **(environment or {}))).stdout
    objects = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    if raw:
        for item in objects:
            raw.write(json.dumps(dict(item, program=item.get("program", "gpt2-ddp"))) + "\n")
        raw.flush()
    return objects


def dropout_flags(probability):
    """The same dropout at GPT-2's three sites in both programs."""
    overrides = ",".join(f"{name}={probability}" for name in ("embd_pdrop", "attn_pdrop", "resid_pdrop"))
    return ["--config-overrides", overrides], ["--dropout", str(probability)]


def median_of(results, key):
    return statistics.median(item[key] for item in results)


def step_shape(arguments, threads, batch):
    return ["--batch-size", str(batch), "--seq-len", str(arguments.seq_len), "--num-threads", str(threads),
            "--steps", str(arguments.steps)]


def training_steps(arguments, raw):
    """gpt2-ddp's step (once per --matmul-paths path) and PyTorch's, alternating round by round."""
    configurations = [(threads, batch) for threads in arguments.threads for batch in arguments.batch_sizes]
    paths = arguments.matmul_paths or [None]
    swift = {(c, path): [] for c in configurations for path in paths}
    pytorch = {c: [] for c in configurations}
    pytorch_forward_backward = {c: [] for c in configurations}
    peaks = {path: [] for path in paths}
    for round_index in range(arguments.rounds):
        for threads, batch in configurations:
            shape = step_shape(arguments, threads, batch)
            swift_dropout, pytorch_dropout = dropout_flags(arguments.dropout)
            for path in paths:
                environment = {"GPT2_DDP_MATMUL": path} if path else {}
                for item in run_json(SWIFT + ["--model-config", "gpt2"] + shape + swift_dropout, raw, environment):
                    if item["what"] == "peak":
                        peaks[path].append(item["gflops_per_second"])
                    else:
                        swift[((threads, batch), path)].append(dict(item, matmul_path=path))
            for item in run_json(PYTORCH + shape + pytorch_dropout, raw):
                (pytorch if item["what"] == "train_step" else pytorch_forward_backward)[(threads, batch)].append(item)
            print(f"round {round_index + 1}: threads={threads} B={batch} done", file=sys.stderr)

    for path in paths:
        print(f"Measured peak{' for ' + path if path else ''}: {statistics.median(peaks[path]):.1f} GFLOP/s per core "
              f"(median of {len(peaks[path])} measurements).")
    print("\n| threads | B×T | matmul | gpt2-ddp ms/step | gpt2-ddp tokens/s | of peak | PyTorch train step ms | tokens/s "
          "| ratio | PyTorch fwd+bwd ms | tokens/s | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for threads, batch in configurations:
        theirs, theirs_fb = pytorch[(threads, batch)], pytorch_forward_backward[(threads, batch)]
        theirs_tps, theirs_fb_tps = (median_of(x, "tokens_per_second") for x in (theirs, theirs_fb))
        for path in paths:
            ours = swift[((threads, batch), path)]
            ours_tps = median_of(ours, "tokens_per_second")
            fraction = median_of(ours, "gflops_per_second") / (statistics.median(peaks[path]) * threads)
            print(f"| {threads} | {batch}×{arguments.seq_len} | {path or 'chosen'} | {median_of(ours, 'ms_per_step'):.0f} | "
                  f"{ours_tps:.1f} | {100 * fraction:.0f}% | {median_of(theirs, 'ms_per_step'):.0f} | {theirs_tps:.1f} | "
                  f"{ours_tps / theirs_tps:.2f}x | {median_of(theirs_fb, 'ms_per_step'):.0f} | {theirs_fb_tps:.1f} | "
                  f"{ours_tps / theirs_fb_tps:.2f}x |")


def dropout_cost(arguments, raw):
    """Each program's training step with dropout P and with 0, the four runs alternating round by round."""
    probability = arguments.dropout_cost
    configurations = [(threads, batch) for threads in arguments.threads for batch in arguments.batch_sizes]
    steps = {}
    for round_index in range(arguments.rounds):
        for threads, batch in configurations:
            shape = step_shape(arguments, threads, batch)
            for p in (probability, 0.0):
                swift_dropout, pytorch_dropout = dropout_flags(p)
                for program, command in (("gpt2-ddp", SWIFT + ["--model-config", "gpt2"] + swift_dropout),
                                         ("pytorch", PYTORCH + pytorch_dropout + ["--what", "train_step"])):
                    for item in run_json(command + shape, raw):
                        if item["what"] == "train_step":
                            steps.setdefault((program, threads, batch, p), []).append(item["ms_per_step"])
            print(f"round {round_index + 1}: threads={threads} B={batch} done", file=sys.stderr)
    print(f"Training step ms (medians over {arguments.rounds} rounds of the median of {arguments.steps} steps), "
          f"dropout {probability} at GPT-2's three sites against none.\n")
    print(f"| threads | B×T | gpt2-ddp p=0 | gpt2-ddp p={probability} | cost | PyTorch p=0 | PyTorch p={probability} | cost |")
    print("|---|---|---|---|---|---|---|---|")
    for threads, batch in configurations:
        cells = []
        for program in ("gpt2-ddp", "pytorch"):
            without, with_dropout = (statistics.median(steps[(program, threads, batch, p)]) for p in (0.0, probability))
            cells += [f"{without:.0f}", f"{with_dropout:.0f}", f"{100 * (with_dropout / without - 1):+.1f}%"]
        print(f"| {threads} | {batch}×{arguments.seq_len} | " + " | ".join(cells) + " |")


def has_bfloat16_kernel(binary):
    """Whether gpt2-ddp's `info --cpu` names a kernel for --bf16 on this CPU."""
    cpu = subprocess.run([binary, "info", "--cpu"], check=True, capture_output=True, text=True).stdout
    return "bf16 matmul (--bf16): none" not in cpu


def bf16_steps(arguments, raw):
    """Each program's training step in fp32 and with bf16 products (gpt2-ddp --bf16, PyTorch
    autocast), the four runs alternating round by round."""
    configurations = [(threads, batch) for threads in arguments.threads for batch in arguments.batch_sizes]
    steps, peaks = {}, {}
    swift_dropout, pytorch_dropout = dropout_flags(arguments.dropout)
    # On a CPU without a bfloat16 kernel gpt2-ddp refuses --bf16; PyTorch's autocast still runs
    # (emulated), so its column is measured and ours says why it is empty.
    ours_bf16 = has_bfloat16_kernel(SWIFT[0])
    for round_index in range(arguments.rounds):
        for threads, batch in configurations:
            shape = step_shape(arguments, threads, batch)
            for bf16 in (False, True):
                extra = ["--bf16"] if bf16 else []
                if ours_bf16 or not bf16:
                    for item in run_json(SWIFT + ["--model-config", "gpt2"] + shape + swift_dropout + extra, raw):
                        if item["what"] == "train_step":
                            steps.setdefault(("gpt2-ddp", threads, batch, bf16), []).append(item["tokens_per_second"])
                            peaks.setdefault((threads, batch, bf16), []).append(item["fraction_of_peak"])
                for item in run_json(PYTORCH + shape + pytorch_dropout + ["--what", "train_step"] + extra, raw):
                    steps.setdefault(("pytorch", threads, batch, bf16), []).append(item["tokens_per_second"])
            print(f"round {round_index + 1}: threads={threads} B={batch} done", file=sys.stderr)
    print(f"Training step tokens/s, medians over {arguments.rounds} rounds of the median of {arguments.steps} steps.\n")
    print("| threads | B×T | PyTorch fp32 | PyTorch bf16 autocast | gpt2-ddp fp32 | of peak | gpt2-ddp --bf16 "
          "| fp32 vs PyTorch fp32 | bf16 vs PyTorch bf16 | gpt2-ddp bf16 / fp32 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for threads, batch in configurations:
        pt32, pt16, us32 = (statistics.median(steps[(program, threads, batch, bf16)])
                            for program, bf16 in (("pytorch", False), ("pytorch", True), ("gpt2-ddp", False)))
        of_peak = 100 * statistics.median(peaks[(threads, batch, False)])
        if ours_bf16:
            us16 = statistics.median(steps[("gpt2-ddp", threads, batch, True)])
            bf16_cells = f"{us16:.1f} | {us32 / pt32:.2f}x | {us16 / pt16:.2f}x | {us16 / us32:.2f}x"
        else:
            bf16_cells = f"n/a (no bf16 kernel) | {us32 / pt32:.2f}x | n/a | n/a"
        print(f"| {threads} | {batch}×{arguments.seq_len} | {pt32:.1f} | {pt16:.1f} | {us32:.1f} | {of_peak:.0f}% | {bf16_cells} |")


def matrix_multiplications(arguments, raw):
    rows = {}
    peaks = []
    for _ in range(arguments.rounds):
        for item in run_json(SWIFT + ["--matmul", "--steps", str(arguments.steps)], raw):
            if item["what"] == "peak":
                peaks.append(item["gflops_per_second"])
                continue
            key = (item["num_threads"], item["batch_size"] * item["seq_len"], item["shape"], item["form"])
            rows.setdefault(key, []).append(item["gflops_per_second"])
    peak = statistics.median(peaks)
    print(f"Measured peak: {peak:.1f} GFLOP/s per core. GFLOP/s are medians over {arguments.rounds} runs "
          f"of the median of {arguments.steps} calls.\n")
    print("| threads | rows (B·T) | shape (in→out) | forward | of peak | input gradient | of peak | weight gradient | of peak |")
    print("|---|---|---|---|---|---|---|---|---|")
    for threads, rows_count, shape in sorted({key[:3] for key in rows}, key=lambda k: (k[0], k[1])):
        cells = []
        for form in ("forward", "input_gradient", "weight_gradient"):
            value = statistics.median(rows[(threads, rows_count, shape, form)])
            cells += [f"{value:.1f}", f"{100 * value / (peak * threads):.0f}%"]
        print(f"| {threads} | {rows_count} | {shape.replace('x', '→')} | " + " | ".join(cells) + " |")


def generation(arguments, raw):
    """gpt2-ddp (fp32 and bf16 weights) and transformers (fp32) at batch 1 and 8, one thread,
    alternating round by round; the bandwidth limit is gpt2-ddp's measurement in the same run."""
    batches = [1, 8]
    ours, theirs, bandwidths = {}, {}, []
    for round_index in range(arguments.rounds):
        for item in run_json(SWIFT + ["--generate", "--num-threads", "1", "--steps", str(arguments.steps)], raw):
            if item["what"] == "memory_bandwidth":
                bandwidths.append(item["gb_per_second"])
            elif item["what"] == "generate":
                ours.setdefault((item["weights_dtype"], item["batch_size"]), []).append(item)
        for item in run_json(GENERATE_REFERENCE + ["--num-threads", "1", "--steps", str(arguments.steps)], raw):
            theirs.setdefault(item["batch_size"], []).append(item)
        print(f"round {round_index + 1} done", file=sys.stderr)
    print(f"Memory read bandwidth, 1 thread: {statistics.median(bandwidths):.1f} GB/s (median of {len(bandwidths)} runs; "
          f"each the best of 5 reads of 1 GiB).\n")
    print("| batch | transformers tokens/s | gpt2-ddp fp32 tokens/s | ratio | of bandwidth limit | gpt2-ddp bf16 tokens/s "
          "| ratio | bf16 / fp32 | of bandwidth limit |")
    print("|---|---|---|---|---|---|---|---|---|")
    for batch in batches:
        reference = median_of(theirs[batch], "tokens_per_second")
        fp32, bf16 = ours[("fp32", batch)], ours[("bf16", batch)]
        fp32_tps, bf16_tps = median_of(fp32, "tokens_per_second"), median_of(bf16, "tokens_per_second")
        print(f"| {batch} | {reference:.1f} | {fp32_tps:.1f} | {fp32_tps / reference:.2f}x | "
              f"{100 * median_of(fp32, 'fraction_of_bandwidth_limit'):.0f}% | {bf16_tps:.1f} | {bf16_tps / reference:.2f}x | "
              f"{bf16_tps / fp32_tps:.2f}x | {100 * median_of(bf16, 'fraction_of_bandwidth_limit'):.0f}% |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--matmul", action="store_true", help="only gpt2-ddp's matrix multiplication table")
    parser.add_argument("--generate", action="store_true", help="generation against transformers' generate()")
    parser.add_argument("--matmul-paths", nargs="+", choices=["avx2", "avx512"],
                        help="time gpt2-ddp's step once per matmul path (GPT2_DDP_MATMUL); default: the one it chooses")
    parser.add_argument("--bf16", action="store_true", help="each step in fp32 and with bf16 products, in both programs")
    parser.add_argument("--dropout", type=float, default=0.0, help="dropout at GPT-2's three sites, both programs")
    parser.add_argument("--dropout-cost", type=float, metavar="P", help="each step with dropout P and with none")
    parser.add_argument("--raw", help="append every JSON line measured to this file")
    arguments = parser.parse_args()
    raw = open(arguments.raw, "a") if arguments.raw else None
    if arguments.matmul:
        matrix_multiplications(arguments, raw)
    elif arguments.generate:
        generation(arguments, raw)
    elif arguments.dropout_cost is not None:
        dropout_cost(arguments, raw)
    elif arguments.bf16:
        bf16_steps(arguments, raw)
    else:
        training_steps(arguments, raw)


if __name__ == "__main__":
    main()
