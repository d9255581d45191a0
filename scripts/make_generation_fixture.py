"""Writes what `generate(do_sample=False)` returns for the tiny fixture model, for the Swift
greedy-decoding parity test. Needs torch and transformers (not needed by CI):

    python scripts/make_generation_fixture.py Tests/GPT2Tests/Fixtures
"""
import json
import sys
from pathlib import Path

import torch
from transformers import GPT2LMHeadModel

fixtures = Path(sys.argv[1])
model = GPT2LMHeadModel.from_pretrained(fixtures / "tiny-gpt2").eval()
cases = []
for prompt, settings in [([300], {"max_new_tokens": 30}),
                         ([300], {"max_new_tokens": 30, "min_new_tokens": 30}),
                         ([17, 250, 3, 99, 42], {"max_new_tokens": 27, "min_new_tokens": 27}),
                         ([17, 250, 3, 99, 42], {"max_new_tokens": 27, "repetition_penalty": 1.3, "no_repeat_ngram_size": 2})]:
    with torch.no_grad():
        output = model.generate(torch.tensor([prompt]), do_sample=False, pad_token_id=300, **settings)
    cases.append({"prompt": prompt, "settings": settings, "new_ids": output[0, len(prompt):].tolist()})
    print(cases[-1])
(fixtures / "greedy.json").write_text(json.dumps(cases, indent=1))
