"""From-scratch training with and without dropout, gpt2-ddp beside PyTorch + transformers.

    swift build -c release
    python scripts/dropout_quality.py --work-dir /tmp/dropout-quality            # the table in BENCHMARKS.md

Both programs start from the same weights (a small GPT-2 made by `gpt2-ddp init`, loaded into
`GPT2LMHeadModel` with `from_pretrained`), train on the same nine tenths of `ideas.txt` with the
recipe's tokens and template, and report the training loss (mean of the step losses of each
logging window) and the loss on the held-out tenth (token-weighted, dropout off). What differs is
what has to: the data order (each program's seeded shuffle) and the dropout masks (Philox keyed
by example here, PyTorch's generator there). Optional; needs torch and transformers.
"""
import argparse
import json
import math
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GPT2_DDP = os.path.join(ROOT, ".build", "release", "gpt2-ddp")
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")


def split_ideas(source, work_dir):
    """Every tenth idea is held out."""
    with open(source, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f if line.strip()]
    train = [line for index, line in enumerate(lines) if index % 10 != 9]
    held_out = [line for index, line in enumerate(lines) if index % 10 == 9]
    paths = os.path.join(work_dir, "train.txt"), os.path.join(work_dir, "held-out.txt")
    for path, part in zip(paths, (train, held_out)):
        with open(path, "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in part))
    return paths, train, held_out


def run_gpt2_ddp(arguments, model_dir, train_file, held_out_file, dropout, output_dir):
    overrides = ",".join(f"{name}={dropout}" for name in ("embd_pdrop", "attn_pdrop", "resid_pdrop"))
    subprocess.run([arguments.gpt2_ddp, "train", "--model-name-or-path", model_dir, "--tokenizer", arguments.tokenizer,
                    "--config-overrides", overrides, "--train-file", train_file, "--validation-file", held_out_file,
                    "--output-dir", output_dir, "--max-steps", str(arguments.steps),
                    "--per-device-train-batch-size", str(arguments.batch_size), "--learning-rate", str(arguments.learning_rate),
                    "--warmup-steps", str(arguments.warmup_steps), "--weight-decay", "0.01",
                    "--logging-steps", str(arguments.eval_steps), "--eval-steps", str(arguments.eval_steps),
                    "--save-strategy", "no", "--seed", str(arguments.seed), "--num-threads", str(arguments.num_threads)],
                   check=True, stdout=subprocess.DEVNULL)
    train_loss, eval_loss = {}, {}
    with open(os.path.join(output_dir, "metrics.jsonl")) as f:
        for record in map(json.loads, f):
            if "loss" in record:
                train_loss[record["step"]] = record["loss"]
            if "eval_loss" in record:
                eval_loss[record["step"]] = record["eval_loss"]
    return train_loss, eval_loss


def run_pytorch(arguments, model_dir, train_texts, held_out_texts, dropout):
    import torch
    from transformers import GPT2LMHeadModel, GPT2Tokenizer, get_linear_schedule_with_warmup

    torch.manual_seed(arguments.seed)
    torch.set_num_threads(arguments.num_threads)
    tokenizer = GPT2Tokenizer(os.path.join(arguments.tokenizer, "vocab.json"), os.path.join(arguments.tokenizer, "merges.txt"))
    tokenizer.add_special_tokens({"bos_token": "<|endoftext|>", "eos_token": "<|EOS|>", "pad_token": "<|pad|>"})
    model = GPT2LMHeadModel.from_pretrained(model_dir, embd_pdrop=dropout, attn_pdrop=dropout, resid_pdrop=dropout)
    model.resize_token_embeddings(len(tokenizer))
    block = model.config.n_positions

    def encode(texts):
        return [tokenizer.encode(f"<|endoftext|> {text} <|EOS|>")[:block] for text in texts]

    def batch_of(examples):
        width = max(len(e) for e in examples)
        ids = torch.full((len(examples), width), tokenizer.pad_token_id)
        mask = torch.zeros((len(examples), width), dtype=torch.long)
        for row, example in enumerate(examples):
            ids[row, :len(example)] = torch.tensor(example)
            mask[row, :len(example)] = 1
        return ids, mask, ids.masked_fill(mask == 0, -100)

    def summed_loss(ids, mask, labels):
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
        targets = labels[:, 1:]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1),
                                                 ignore_index=-100, reduction="sum")
        return loss, int((targets != -100).sum())

    train, held_out = encode(train_texts), encode(held_out_texts)
    no_decay = lambda name: name.endswith(".bias") or ".ln_" in name or name.startswith("transformer.ln_f")
    parameters = dict(model.named_parameters())
    optimizer = torch.optim.AdamW([
        {"params": [p for n, p in parameters.items() if not no_decay(n)], "weight_decay": 0.01},
        {"params": [p for n, p in parameters.items() if no_decay(n)], "weight_decay": 0.0}],
        lr=arguments.learning_rate, betas=(0.9, 0.999), eps=1e-8)
    schedule = get_linear_schedule_with_warmup(optimizer, arguments.warmup_steps, arguments.steps)
    generator = torch.Generator().manual_seed(arguments.seed)
    order, train_loss, eval_loss, window = [], {}, {}, []
    for step in range(1, arguments.steps + 1):
        if len(order) < arguments.batch_size:
            order = torch.randperm(len(train), generator=generator).tolist()
        chosen, order = order[:arguments.batch_size], order[arguments.batch_size:]
        model.train()
        loss, count = summed_loss(*batch_of([train[i] for i in chosen]))
        (loss / count).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        window.append(loss.item() / count)
        if step % arguments.eval_steps == 0:
            train_loss[step] = sum(window) / len(window)
            window = []
            model.eval()
            total, tokens = 0.0, 0
            with torch.no_grad():
                for start in range(0, len(held_out), 64):
                    loss, count = summed_loss(*batch_of(held_out[start:start + 64]))
                    total, tokens = total + loss.item(), tokens + count
            eval_loss[step] = total / tokens
    return train_loss, eval_loss


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", required=True, help="a new directory for the split, the model and the runs")
    parser.add_argument("--gpt2-ddp", default=GPT2_DDP, help="the executable (default: the release build)")
    parser.add_argument("--ideas", default=os.path.join(SHARED, "ideas.txt"))
    parser.add_argument("--tokenizer", default=os.path.join(SHARED, "gpt2-tokenizer"))
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--eval-steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--warmup-steps", type=int, default=60)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--num-threads", type=int, default=2)
    parser.add_argument("--dropouts", type=float, nargs="+", default=[0.1, 0.0])
    arguments = parser.parse_args()
    os.makedirs(arguments.work_dir)
    (train_file, held_out_file), train_texts, held_out_texts = split_ideas(arguments.ideas, arguments.work_dir)
    config = dict(model_type="gpt2", vocab_size=50257, n_positions=64, n_embd=128, n_layer=4, n_head=4)
    config_path = os.path.join(arguments.work_dir, "config.json")
    with open(config_path, "w") as f:
        json.dump(config, f)
    model_dir = os.path.join(arguments.work_dir, "init")
    subprocess.run([arguments.gpt2_ddp, "init", "--model-config", config_path, "--output-dir", model_dir, "--seed", "1"],
                   check=True, stdout=subprocess.DEVNULL)
    print(f"{len(train_texts)} training ideas, {len(held_out_texts)} held out; GPT-2 with n_embd 128, 4 layers, "
          f"4 heads; {arguments.steps} steps of batch {arguments.batch_size}, lr {arguments.learning_rate} "
          f"(linear, {arguments.warmup_steps} warmup), weight decay 0.01, {arguments.num_threads} threads.\n")
    print("| dropout | step | gpt2-ddp train loss | PyTorch train loss | gpt2-ddp held-out loss | PyTorch held-out loss |")
    print("|---|---|---|---|---|---|")
    for dropout in arguments.dropouts:
        ours = run_gpt2_ddp(arguments, model_dir, train_file, held_out_file, dropout,
                            os.path.join(arguments.work_dir, f"gpt2-ddp-p{dropout}"))
        theirs = run_pytorch(arguments, model_dir, train_texts, held_out_texts, dropout)
        for step in sorted(theirs[1]):
            cells = [ours[0].get(step, math.nan), theirs[0][step], ours[1].get(step, math.nan), theirs[1][step]]
            print(f"| {dropout} | {step} | " + " | ".join(f"{value:.3f}" for value in cells) + " |", flush=True)


if __name__ == "__main__":
    main()
