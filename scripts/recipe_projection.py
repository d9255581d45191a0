"""Projects the recipe's end-to-end time (GPT-2 124M from `gpt2-ddp init`, all of a data file,
10 epochs, batch 16, an evaluation per epoch) from 50 measured steps and one measured evaluation,
for gpt2-ddp (fp32, and --bf16 where the CPU has a bfloat16 kernel) and for transformers' Trainer
with the same arguments (fp32 and bf16=True), the runs alternating program by program. The
figures in BENCHMARKS.md.

    swift build -c release
    python scripts/recipe_projection.py --work-dir /tmp/recipe --data ../shared/data/ideas.txt

Both programs train one process with every core (`--num-threads`, torch.set_num_threads), on the
same split (a seeded fifth of the data held out into a file of its own, the rest trained on whole:
gpt2-ddp with --validation-split 0), the same template ("{bos} {text} {eos}" with bos, eos and pad added
and the embeddings resized), padded batches, warmup 200, weight decay 0.01, dropout as the
config asks (0.1). A step's time is each program's own train_runtime over the 50 steps (its
training loop, first steps included) divided by 50; an evaluation is timed once, whole process
for gpt2-ddp (model and data loading included), `Trainer.evaluate()` for transformers.

Needs torch, transformers and accelerate (Trainer's dependency), from PyPI in a virtualenv. Optional, never in CI.
"""
import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time

from bench_side_by_side import has_bfloat16_kernel  # (this script's folder is on sys.path)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GPT2_DDP = os.path.join(ROOT, ".build", "release", "gpt2-ddp")
EPOCHS, BATCH, STEPS = 10, 16, 50


def ours(arguments, bf16):
    """gpt2-ddp: 50 steps of the recipe, then one evaluation of the held-out part."""
    output = os.path.join(arguments.work_dir, f"gpt2-ddp-{'bf16' if bf16 else 'fp32'}-{time.time_ns()}")
    extra = ["--bf16"] if bf16 else []
    subprocess.run([GPT2_DDP, "train", "--model-name-or-path", arguments.model, "--tokenizer", arguments.tokenizer,
                    "--train-file", arguments.data, "--validation-split", "0", "--output-dir", output, "--num-train-epochs", str(EPOCHS),
                    "--per-device-train-batch-size", str(BATCH), "--warmup-steps", "200", "--weight-decay", "0.01",
                    "--max-steps", str(STEPS), "--logging-steps", "1", "--eval-strategy", "no", "--save-strategy", "no",
                    "--num-threads", str(arguments.threads)] + extra, check=True, capture_output=True, text=True)
    records = [json.loads(line) for line in open(os.path.join(output, "metrics.jsonl"))]
    runtime = next(r["train_runtime"] for r in records if "train_runtime" in r)
    held_out = os.path.join(arguments.work_dir, "held-out.txt")
    start = time.monotonic()
    subprocess.run([GPT2_DDP, "evaluate", "--model-name-or-path", output, "--validation-file", held_out,
                    "--per-device-eval-batch-size", str(BATCH), "--num-threads", str(arguments.threads)] + extra,
                   check=True, capture_output=True, text=True)
    return runtime / STEPS, time.monotonic() - start


def split_data(arguments):
    """The training and held-out ideas (a seeded fifth held out), as files both programs read."""
    lines = [line.rstrip("\n") for line in open(arguments.data, encoding="utf-8") if line.strip()]
    order = list(range(len(lines)))
    random.Random(1).shuffle(order)
    held = set(order[: round(len(lines) * 0.2)])
    train = [line for i, line in enumerate(lines) if i not in held]
    held_out = [line for i, line in enumerate(lines) if i in held]
    for name, part in (("train.txt", train), ("held-out.txt", held_out)):
        with open(os.path.join(arguments.work_dir, name), "w", encoding="utf-8") as file:
            file.write("".join(line + "\n" for line in part))
    return len(train), len(held_out)


def trainer(arguments, bf16):
    """transformers' Trainer: the same 50 steps, then one evaluation of the held-out part."""
    import torch
    from transformers import DataCollatorWithPadding, GPT2LMHeadModel, GPT2TokenizerFast, Trainer, TrainingArguments
    torch.set_num_threads(arguments.threads)
    # (transformers 5's GPT2TokenizerFast(vocab_file=..., merges_file=...) builds an empty vocabulary
    # without a word of warning; from_pretrained reads the same two files.)
    tokenizer = GPT2TokenizerFast.from_pretrained(arguments.tokenizer, local_files_only=True)
    tokenizer.add_special_tokens({"bos_token": "<|endoftext|>", "eos_token": "<|EOS|>", "pad_token": "<|pad|>"})
    model = GPT2LMHeadModel.from_pretrained(arguments.model)
    model.resize_token_embeddings(len(tokenizer))

    class Examples(torch.utils.data.Dataset):
        def __init__(self, path):
            texts = [line.rstrip("\n") for line in open(path, encoding="utf-8")]
            self.items = [tokenizer(f"{tokenizer.bos_token} {text} {tokenizer.eos_token}") for text in texts]

        def __len__(self):
            return len(self.items)

        def __getitem__(self, index):
            return dict(self.items[index])

    class Collator(DataCollatorWithPadding):
        def __call__(self, features):
            batch = super().__call__(features)
            batch["labels"] = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
            return batch

    settings = TrainingArguments(output_dir=os.path.join(arguments.work_dir, f"trainer-{time.time_ns()}"),
                                 per_device_train_batch_size=BATCH, per_device_eval_batch_size=BATCH,
                                 num_train_epochs=EPOCHS, max_steps=STEPS, warmup_steps=200, weight_decay=0.01,
                                 eval_strategy="no", save_strategy="no", logging_steps=50, report_to=[],
                                 bf16=bf16, use_cpu=True, dataloader_num_workers=0, seed=42)
    run = Trainer(model=model, args=settings, train_dataset=Examples(os.path.join(arguments.work_dir, "train.txt")),
                  eval_dataset=Examples(os.path.join(arguments.work_dir, "held-out.txt")),
                  data_collator=Collator(tokenizer))
    runtime = run.train().metrics["train_runtime"]
    start = time.monotonic()
    run.evaluate()
    return runtime / STEPS, time.monotonic() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "ideas.txt"))
    parser.add_argument("--tokenizer", default=os.path.join(ROOT, "..", "shared", "data", "gpt2-tokenizer"))
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--program", choices=["trainer"], help=argparse.SUPPRESS)
    parser.add_argument("--bf16", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    arguments.model = os.path.join(arguments.work_dir, "gpt2-init")
    if arguments.program == "trainer":  # one Trainer run in a process of its own (its threads, its memory)
        print(json.dumps(dict(zip(("step", "eval"), trainer(arguments, arguments.bf16)))))
        return
    os.makedirs(arguments.work_dir, exist_ok=True)
    if not os.path.exists(arguments.model):
        subprocess.run([GPT2_DDP, "init", "--model-config", "gpt2", "--output-dir", arguments.model, "--seed", "1"], check=True)
    train_count, held_count = split_data(arguments)
    arguments.data = os.path.join(arguments.work_dir, "train.txt")
    ours_bf16 = has_bfloat16_kernel(GPT2_DDP)
    results = {}
    for _ in range(arguments.rounds):
        for bf16 in (False, True):
            if not bf16 or ours_bf16:
                results.setdefault(("gpt2-ddp", bf16), []).append(ours(arguments, bf16))
            command = [sys.executable, __file__, "--work-dir", arguments.work_dir, "--tokenizer", arguments.tokenizer,
                       "--threads", str(arguments.threads), "--program", "trainer"] + (["--bf16"] if bf16 else [])
            line = subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            measured = json.loads(line)
            results.setdefault(("trainer", bf16), []).append((measured["step"], measured["eval"]))
    steps = EPOCHS * math.ceil(train_count / BATCH)
    print(f"{train_count} training and {held_count} held-out examples: {steps} steps and {EPOCHS} evaluations; "
          f"{arguments.threads} threads; medians over {arguments.rounds} round(s)\n")
    print("| program | products | s/step | s/evaluation | projected hours |")
    print("|---|---|---|---|---|")
    for (program, bf16), runs in results.items():
        step = statistics.median(r[0] for r in runs)
        evaluation = statistics.median(r[1] for r in runs)
        hours = (steps * step + EPOCHS * evaluation) / 3600
        name = "gpt2-ddp" if program == "gpt2-ddp" else "transformers Trainer"
        flag = ("--bf16" if program == "gpt2-ddp" else "bf16=True") if bf16 else "fp32"
        print(f"| {name} | {flag} | {step:.2f} | {evaluation:.1f} | {hours:.2f} |")
    if not ours_bf16:
        print("\ngpt2-ddp --bf16: not run, this CPU has no bfloat16 kernel (`gpt2-ddp info --cpu`).")


if __name__ == "__main__":
    main()
