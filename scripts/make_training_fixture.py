"""Writes the reference training trajectory the Swift trainer is compared with.

The tiny model of make_model_fixtures.py is trained for 20 steps on one batch (the same every
step) the way `Trainer` does it: torch.optim.AdamW with Trainer's decay groups (no decay on
biases and LayerNorm), the linear schedule with warmup, clip_grad_norm_. Records each step's
loss (before the update), learning rate and gradient norm (before clipping), and the final
weights. Needs torch and transformers (not needed by CI):

    python scripts/make_training_fixture.py Tests/GPT2Tests/Fixtures Tests/TrainingTests/Fixtures
"""
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import GPT2LMHeadModel, get_linear_schedule_with_warmup

models, out = Path(sys.argv[1]), Path(sys.argv[2])
settings = {"steps": 20, "learning_rate": 3e-3, "warmup_steps": 3, "weight_decay": 0.01, "max_grad_norm": 1.0,
            "adam_beta1": 0.9, "adam_beta2": 0.999, "adam_epsilon": 1e-8}

model = GPT2LMHeadModel.from_pretrained(models / "tiny-gpt2").train()
batch = json.loads((models / "batch.json").read_text())
input_ids, attention_mask, labels = (torch.tensor(batch[key]) for key in ("input_ids", "attention_mask", "labels"))

decay = [p for n, p in model.named_parameters() if not n.endswith("bias") and ".ln_" not in n]
no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or ".ln_" in n]
optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": settings["weight_decay"]},
                               {"params": no_decay, "weight_decay": 0.0}],
                              lr=settings["learning_rate"], betas=(settings["adam_beta1"], settings["adam_beta2"]),
                              eps=settings["adam_epsilon"], foreach=False, fused=False)
scheduler = get_linear_schedule_with_warmup(optimizer, settings["warmup_steps"], settings["steps"])

steps = []
for step in range(settings["steps"]):
    optimizer.zero_grad()
    loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), settings["max_grad_norm"])
    learning_rate = scheduler.get_last_lr()[0]
    optimizer.step()
    scheduler.step()
    steps.append({"step": step + 1, "loss": loss.item(), "learning_rate": learning_rate, "grad_norm": grad_norm.item()})
    print(steps[-1])

out.mkdir(parents=True, exist_ok=True)
(out / "trajectory.json").write_text(json.dumps({"settings": settings, "steps": steps}, indent=1))
save_file({name: p.detach().contiguous() for name, p in model.named_parameters()}, str(out / "trajectory_final.safetensors"))
