"""Compares a `gpt2-ddp forward-backward` output with what `transformers` computes.

    gpt2-ddp forward-backward --model-name-or-path DIR --batch BATCH.json --output OUT.safetensors
    python scripts/compare_with_transformers.py DIR BATCH.json OUT.safetensors

Loads DIR with GPT2LMHeadModel.from_pretrained (so it also checks that a directory written by
gpt2-ddp loads in transformers), runs the batch, and prints the largest relative error of the loss,
the logits and each gradient (max |a - b| / max |b| per tensor). Needs torch and transformers.
"""
import json
import sys

import torch
from safetensors.torch import load_file
from transformers import GPT2LMHeadModel

directory, batch_path, output_path = sys.argv[1:4]
model = GPT2LMHeadModel.from_pretrained(directory, attn_implementation="eager").eval()
batch = json.load(open(batch_path))
input_ids = torch.tensor(batch["input_ids"])
attention_mask = torch.tensor(batch.get("attention_mask", [[1] * len(row) for row in batch["input_ids"]]))
labels = torch.tensor(batch["labels"]) if "labels" in batch else input_ids.masked_fill(attention_mask == 0, -100)
result = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
result.loss.backward()

ours = load_file(output_path)
reference = {"loss": result.loss.detach().reshape(1), "logits": result.logits.detach()}
for name, parameter in model.named_parameters():
    reference["grad." + name] = parameter.grad


def relative(a, b):
    return ((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-30)).item()


missing = sorted(set(reference) - set(ours))
if missing:
    sys.exit(f"{output_path}: missing tensors {missing[:3]}")
print(f"loss: ours {ours['loss'].item():.7f} transformers {result.loss.item():.7f} relative error {relative(ours['loss'], reference['loss']):.2e}")
print(f"logits: relative error {relative(ours['logits'], reference['logits']):.2e}")
worst = max((relative(ours[name], reference[name]), name) for name in reference if name.startswith("grad."))
print(f"gradients: worst relative error {worst[0]:.2e} ({worst[1]})")
