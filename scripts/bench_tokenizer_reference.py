#!/usr/bin/env python3
"""Single-thread encode throughput of the reference GPT-2 tokenizers on the project's data, as JSON
lines (the same fields as the Swift `tokbench` prints):

- Hugging Face `tokenizers` (Rust), from the local vocab.json and merges.txt: the whole file as one
  string ("whole") and every line as its own encode call ("lines");
- OpenAI `tiktoken` (`encode_ordinary`), with GPT-2's encoding built locally from the same
  vocab.json (no download): ranks are the vocabulary ids, keyed by the bytes each token stands for.

Throughput is reported for the median and the best of several runs. Run with the project's virtualenv:
    /work/venv/hf/bin/python scripts/bench_tokenizer_reference.py [runs]
"""
import json
import os
import sys
import time
from pathlib import Path

# Must be set before the libraries start their thread pools.
os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import tiktoken  # noqa: E402
from tokenizers import Tokenizer, decoders, pre_tokenizers  # noqa: E402
from tokenizers.models import BPE  # noqa: E402

from gpt2_byte_level import bytes_to_unicode  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
TOKENIZER_DIR = DATA / "gpt2-tokenizer"
FILES = ["tinyshakespeare.txt", "ideas_long.txt"]
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def hf_tokenizer():
    tokenizer = Tokenizer(BPE.from_file(str(TOKENIZER_DIR / "vocab.json"), str(TOKENIZER_DIR / "merges.txt")))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def tiktoken_gpt2():
    byte_for_character = {character: byte for byte, character in bytes_to_unicode().items()}
    vocabulary = json.loads((TOKENIZER_DIR / "vocab.json").read_text(encoding="utf-8"))
    ranks = {bytes(byte_for_character[c] for c in token): rank
             for token, rank in vocabulary.items() if token != "<|endoftext|>"}
    return tiktoken.Encoding(name="gpt2-local", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": vocabulary["<|endoftext|>"]})


def timings(make_encoder, run, runs):
    """Median and best time of `run(encoder)`, each run with a fresh encoder made outside the
    timing, so that caches start cold as in one real pass over a file. The best time is the one
    least disturbed by other work on a shared machine."""
    times = []
    result = None
    for _ in range(runs):
        encoder = make_encoder()
        start = time.perf_counter()
        result = run(encoder)
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2], times[0], result


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    tik = tiktoken_gpt2()
    for name in FILES:
        text = (DATA / name).read_text(encoding="utf-8")
        lines = text.split("\n")[:-1]
        megabytes = len(text.encode("utf-8")) / 1e6
        cases = [
            ("huggingface tokenizers", "whole", hf_tokenizer, lambda hf: len(hf.encode(text).ids)),
            # encode_batch loops in Rust (on one thread here), so Python's per-call cost is left out.
            ("huggingface tokenizers", "lines", hf_tokenizer,
             lambda hf: sum(len(encoding.ids) for encoding in hf.encode_batch(lines))),
            ("tiktoken", "whole", lambda: tik, lambda tik: len(tik.encode_ordinary(text))),
            # A Python loop: tiktoken's batch call only adds a thread pool around the same calls.
            ("tiktoken", "lines", lambda: tik, lambda tik: sum(len(tik.encode_ordinary(line)) for line in lines)),
        ]
        for library, mode, make_encoder, run in cases:
            median, best, tokens = timings(make_encoder, run, runs)
            print(json.dumps({"library": library, "file": name, "mode": mode, "tokens": tokens,
                              "seconds": round(median, 4), "mb_per_s": round(megabytes / median, 2),
                              "best_mb_per_s": round(megabytes / best, 2)}), flush=True)


if __name__ == "__main__":
    main()
