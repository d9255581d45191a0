"""Writes the reference fixtures the Swift parity tests compare against.

Makes a tiny GPT-2 with random (deliberately non-trivial) weights, saves it with
`save_pretrained`, and records what `transformers` computes for fixed batches: the loss, the
logits and the gradient of every parameter. Needs torch and transformers (not needed by CI):

    python scripts/make_model_fixtures.py Tests/GPT2Tests/Fixtures
"""
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel

out = Path(sys.argv[1] if len(sys.argv) > 1 else "Tests/GPT2Tests/Fixtures")
torch.manual_seed(1234)

config = GPT2Config(vocab_size=301, n_positions=32, n_embd=32, n_layer=2, n_head=4,
                    bos_token_id=300, eos_token_id=300, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
model = GPT2LMHeadModel(config)
with torch.no_grad():
    # GPT-2's own init leaves biases at 0 and LayerNorm at 1/0; random values exercise every term.
    for name, parameter in model.named_parameters():
        if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name.endswith("ln_f.weight"):
            parameter.copy_(1 + 0.2 * torch.randn_like(parameter))
        elif name.endswith("bias"):
            parameter.copy_(0.1 * torch.randn_like(parameter))
        else:
            parameter.copy_(0.15 * torch.randn_like(parameter))
model.eval()
model.save_pretrained(out / "tiny-gpt2")

B, T = 3, 12
input_ids = torch.randint(0, config.vocab_size, (B, T))
attention_mask = torch.ones(B, T, dtype=torch.long)
attention_mask[1, 8:] = 0          # right padding, as the trainer's collator makes it
input_ids[1, 8:] = 300
labels = input_ids.clone()
labels[attention_mask == 0] = -100
labels[2, 3:6] = -100              # a masked span in the middle of a row


def reference(name, batch, labels_used):
    model.zero_grad()
    result = model(**batch, labels=labels_used)
    result.loss.backward()
    tensors = {"loss": result.loss.detach().reshape(1), "logits": result.logits.detach().contiguous()}
    for parameter_name, parameter in model.named_parameters():
        tensors["grad." + parameter_name] = parameter.grad.detach().contiguous()
    save_file(tensors, str(out / f"{name}.reference.safetensors"))
    print(name, "loss", result.loss.item())


explicit = {"input_ids": input_ids.tolist(), "attention_mask": attention_mask.tolist(), "labels": labels.tolist()}
(out / "batch.json").write_text(json.dumps(explicit))
reference("batch", {"input_ids": input_ids, "attention_mask": attention_mask}, labels)

# Without labels the CLI derives them from input_ids and the mask, as the collator does.
default_labels = input_ids.masked_fill(attention_mask == 0, -100)
(out / "batch_default_labels.json").write_text(json.dumps({"input_ids": input_ids.tolist(), "attention_mask": attention_mask.tolist()}))
reference("batch_default_labels", {"input_ids": input_ids, "attention_mask": attention_mask}, default_labels)
