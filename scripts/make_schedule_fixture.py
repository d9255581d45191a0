"""Writes the learning rates `transformers.get_scheduler` gives at every step, for the Swift schedules.

Each case is a scheduler type with its `lr_scheduler_kwargs` (as `Trainer` passes
`TrainingArguments.lr_scheduler_kwargs` to `get_scheduler`), a warmup and a total step count. The
rate recorded for step index k is the one the k-th optimizer step uses, `get_last_lr()` before the
k-th `scheduler.step()`, as Trainer steps the LambdaLR after each optimizer step. Needs torch and
transformers (not needed by CI):

    python scripts/make_schedule_fixture.py Tests/TrainingTests/Fixtures/schedules.json
"""
import json
import sys

import torch
import transformers
from transformers import get_scheduler

PEAK = 1e-3

# (type, kwargs, warmup steps, total steps). The last ones are those the CLI test trains with.
CASES = [
    ("linear", {}, 0, 10),
    ("linear", {}, 3, 30),
    ("cosine", {}, 0, 10),
    ("cosine", {}, 4, 30),
    ("cosine", {"num_cycles": 1.5}, 2, 30),
    ("cosine_with_restarts", {}, 0, 30),
    ("cosine_with_restarts", {"num_cycles": 2}, 3, 30),
    ("cosine_with_restarts", {"num_cycles": 3}, 0, 7),
    ("polynomial", {}, 0, 10),
    ("polynomial", {"power": 2, "lr_end": 1e-7}, 3, 30),
    ("polynomial", {"power": 0.5, "lr_end": 1e-4}, 0, 30),
    ("constant", {}, 0, 7),
    ("constant", {}, 3, 10),
    ("constant_with_warmup", {}, 0, 7),
    ("constant_with_warmup", {}, 4, 10),
    ("inverse_sqrt", {}, 0, 30),
    ("inverse_sqrt", {}, 5, 30),
    ("inverse_sqrt", {"timescale": 3}, 2, 30),
    ("inverse_sqrt", {"timescale": 20}, 0, 30),
    ("cosine_with_min_lr", {"min_lr_rate": 0.1}, 0, 10),
    ("cosine_with_min_lr", {"min_lr_rate": 0.1}, 3, 30),
    ("cosine_with_min_lr", {"min_lr": 1e-4, "num_cycles": 1}, 2, 30),
    ("warmup_stable_decay", {"num_decay_steps": 10}, 0, 30),
    ("warmup_stable_decay", {"num_decay_steps": 6, "warmup_type": "cosine", "decay_type": "1-sqrt"}, 5, 20),
    ("warmup_stable_decay", {"num_decay_steps": 5, "num_stable_steps": 4, "warmup_type": "1-sqrt", "min_lr_ratio": 0.2}, 3, 20),
    ("warmup_stable_decay", {"num_decay_steps": 10, "num_cycles": 1}, 0, 15),
    # More decay than the steps after warmup: the stable phase is negative and decay starts midway.
    ("warmup_stable_decay", {"num_decay_steps": 25}, 10, 30),
    ("warmup_stable_decay", {"num_decay_steps": 8, "decay_type": "linear", "min_lr_ratio": 0.1}, 4, 20),
]


def learning_rates(name, kwargs, warmup, total):
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=PEAK)
    scheduler = get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=total,
                              scheduler_specific_kwargs=dict(kwargs))
    rates = []
    for _ in range(total):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return rates


cases = [{"lr_scheduler_type": name, "lr_scheduler_kwargs": kwargs, "warmup_steps": warmup, "total_steps": total,
          "learning_rates": learning_rates(name, kwargs, warmup, total)}
         for name, kwargs, warmup, total in CASES]
with open(sys.argv[1], "w") as file:
    # A case per line: small, and a diff shows which case changed.
    file.write('{"transformers": %s, "torch": %s, "learning_rate": %s, "cases": [\n'
               % (json.dumps(transformers.__version__), json.dumps(torch.__version__), json.dumps(PEAK)))
    file.write(",\n".join(json.dumps(case) for case in cases))
    file.write("\n]}\n")
