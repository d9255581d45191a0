#!/usr/bin/env python3
"""Writes Tests/TokenizerTests/Fixtures/hf_ids.json: token ids and decodes from Hugging Face's
GPT2TokenizerFast (transformers, backed by the Rust `tokenizers` library), loaded from the local
GPT-2 files only, for sampled lines of the project's data and hand-written hard cases.

Run with the project's virtualenv:  /work/venv/hf/bin/python scripts/make_tokenizer_fixtures.py
"""
import json
import random
from pathlib import Path

from transformers import AddedToken, GPT2TokenizerFast

from gpt2_byte_level import bytes_to_unicode

PACKAGE = Path(__file__).resolve().parent.parent
DATA = PACKAGE.parent / "shared" / "data"
TOKENIZER_DIR = DATA / "gpt2-tokenizer"
OUT = PACKAGE / "Tests" / "TokenizerTests" / "Fixtures" / "hf_ids.json"
SEED = 20240611

# Each setting is reproduced by the Swift tests: load the directory with these special-token
# roles (like from_pretrained kwargs), then add `added_tokens` in order.
SETTINGS = {
    "plain": {"roles": {}, "added_tokens": []},
    "recipe": {
        "roles": {"bos_token": "<|endoftext|>", "eos_token": "<|EOS|>", "pad_token": "<|pad|>"},
        "added_tokens": [],
    },
    # Added tokens with every AddedToken option, to pin how they split text and decode.
    "added_flags": {
        "roles": {},
        "added_tokens": [
            dict(content="<mask>", special=True, lstrip=True, rstrip=False, single_word=False, normalized=False),
            dict(content="[R]", special=True, lstrip=False, rstrip=True, single_word=False, normalized=False),
            dict(content="xyzzy", special=False, lstrip=False, rstrip=False, single_word=True, normalized=True),
            dict(content="héllo", special=False, lstrip=False, rstrip=False, single_word=False, normalized=True),
            dict(content=" sp", special=False, lstrip=False, rstrip=False, single_word=False, normalized=True),
            dict(content="€uro", special=False, lstrip=False, rstrip=False, single_word=False, normalized=True),
            dict(content="hello", special=False, lstrip=False, rstrip=False, single_word=False, normalized=True),
            dict(content="<|end", special=False, lstrip=False, rstrip=False, single_word=False, normalized=True),
            dict(content="abc", special=True, lstrip=False, rstrip=False, single_word=False, normalized=False),
            dict(content="bcd", special=False, lstrip=False, rstrip=False, single_word=False, normalized=True),
        ],
    },
}

HARD_CASES = [
    "Hello, my dog is cute",
    "",
    " ",
    "  ",
    "\n",
    "a",
    " leading space",
    "  two leading spaces",
    "trailing space ",
    "trailing spaces   ",
    "a  b",
    "a   b",
    "a \n\n b",
    "a\n\nb",
    "a\n \nb",
    "\n\n\nthree newlines first",
    "line one\nline two\n",
    "ends with newlines\n\n",
    "tabs\tand\t\tmore\t tabs \t",
    "\t\tx",
    "  \tx",
    "x\r\ny\r\n",
    "mixed \u00a0nbsp\u00a0 and\u2028line sep\u2029para sep\u0085nel\u000bvt\u000cff",
    "ideographic\u3000space\u3000\u3000x",
    "ogham\u1680space and en\u2002quad",
    "zero\u200bwidth\ufeffbom\u180emongolian",
    "it's", "it'S", "IT'S", "we'll", "WE'LL", "we'Ll", "I'd", "I'D", "you're", "you've", "I'm",
    "don't", "Don't", "DON'T", "'s", "'sam", "''s", " 's", "'", "''", "'ll've'd", "rock 'n' roll",
    "abc123def", "1,000,000", "3.14", "-42", "$5.99", "0x1F", "123456789012345678901234567890",
    "x² + y² = z²", "½ cup", "¼¾", "Chapter Ⅻ", "ⅻ and Ⅷ", "①②③", "𝟙𝟚𝟛 math digits", "٣٤ arabic-indic",
    "!!!", "?!?!", "...", "—", "--", "::", "()[]{}", "<>", "a.b.c", "e-mail", "@user #tag", "~`^|\\",
    "__init__", "snake_case_name", "C++", "x=y+z;", "http://example.com/path?q=1&r=2",
    "😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇺🇸🇬🇧", "I ❤️ Swift", "emoji😀in😀word", "✅ done",
    "日本語のテキスト", "中文字符测试", "한국어 텍스트", "ひらがな カタカナ",
    "é", "e\u0301", "cafe\u0301 au lait", "a\u0308\u0304", "Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇",
    "مرحبا بالعالم", "नमस्ते दुनिया", "Привет, мир!", "Γειά σου Κόσμε", "שלום עולם", "ไทย ภาษา",
    "Ⓐ circled", "ǅ titlecase", "ʰ modifier", "ª º ordinal",
    "\u1c89 unicode 16 letter", "\U00016ea4 unicode 17 letter",
    "hello<|endoftext|>world", "<|endoftext|>", "<|endoftext|><|endoftext|>", " <|endoftext|> ",
    "<|EOS|>", "<|pad|>", "a<|EOS|>b<|pad|>c", "<|endoftext|> An idea <|EOS|>",
    "<|endoftext|>An idea<|EOS|>", "<|endoftext|> An idea <|EOS|><|pad|><|pad|>",
    "<|endoftext|", "<|endoftext|>>", "<<|EOS|>", "<|EOS|", "<|eos|>", "<|EOS|><|EOS|>",
    "a <mask> b", "a<mask>b", "a   <mask>   b", "x [R]   y", "x[R]\n\ny", "[R]<mask>",
    "xyzzy", "a xyzzy b", "xyzzyx", "axyzzy", "_xyzzy", "xyzzy_", "1xyzzy", "éxyzzy", "xyzzy\u0301", "(xyzzy).",
    "xyzzyxyzzy", "xyzzy xyzzy", "héllo world", "say héllo",
    "a sp b", "asp", " sp", "€uro €uro", "hello", "sayhello", "<|endoftext|>", "<|end", "abcd", "xbcdx",
    "1" * 300,
    "a" * 500,
    "!" * 200,
    " " * 100 + "x",
    "\n" * 50,
    "Ab1!" * 100,
]


def long_random_word(rng):
    """A single 2,000-letter pre-token: exercises BPE on a long piece."""
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGH") for _ in range(2000))


def byte_token_ids(tokenizer, data: bytes):
    """The ids of the single-byte tokens for `data`, bypassing BPE."""
    character_for_byte = bytes_to_unicode()
    return [tokenizer.convert_tokens_to_ids(character_for_byte[byte]) for byte in data]


def sample_lines(path: Path, count: int, rng):
    lines = path.read_text(encoding="utf-8").split("\n")[:-1]
    return rng.sample(lines, count)


def shakespeare_passages(rng, count: int):
    """Multi-line passages, so blank lines and newline runs appear as in the corpus."""
    lines = (DATA / "tinyshakespeare.txt").read_text(encoding="utf-8").split("\n")
    passages = []
    for _ in range(count):
        start = rng.randrange(len(lines) - 20)
        passages.append("\n".join(lines[start:start + rng.randrange(3, 20)]) + "\n")
    return passages


def make_tokenizer(setting):
    tokenizer = GPT2TokenizerFast.from_pretrained(str(TOKENIZER_DIR), local_files_only=True, **setting["roles"])
    for spec in setting["added_tokens"]:
        token = AddedToken(spec["content"], special=spec["special"], lstrip=spec["lstrip"], rstrip=spec["rstrip"],
                           single_word=spec["single_word"], normalized=spec["normalized"])
        tokenizer.add_tokens([token], special_tokens=spec["special"])
    return tokenizer


def compact_json(document):
    """Indented JSON with one test case per line, to keep the file small yet diffable."""
    def dumps(value):
        return json.dumps(value, ensure_ascii=False)
    lines = ["{"]
    items = list(document.items())
    for index, (key, value) in enumerate(items):
        comma = "," if index < len(items) - 1 else ""
        if isinstance(value, list):
            body = ",\n".join("  " + dumps(case) for case in value)
            lines.append(f" {dumps(key)}: [\n{body}\n ]{comma}")
        else:
            lines.append(f" {dumps(key)}: {dumps(value)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main():
    rng = random.Random(SEED)
    tokenizers = {name: make_tokenizer(setting) for name, setting in SETTINGS.items()}
    plain = tokenizers["plain"]

    encode_cases = []

    def add_encode(setting, text, source):
        encode_cases.append({"setting": setting, "source": source, "text": text,
                             "ids": tokenizers[setting].encode(text)})

    for name in ("ideas.txt", "ideas_long.txt", "tinyshakespeare.txt"):
        for line in sample_lines(DATA / name, 100, rng):
            add_encode("plain", line, name)
    for passage in shakespeare_passages(rng, 12):
        add_encode("plain", passage, "tinyshakespeare.txt passage")
    for text in HARD_CASES + [long_random_word(rng)]:
        for setting in tokenizers:
            add_encode(setting, text, "hand-written")

    decode_cases = []

    def add_decode(setting, ids, note, skip_special_tokens=False):
        decode_cases.append({"setting": setting, "note": note, "ids": ids,
                             "skip_special_tokens": skip_special_tokens,
                             "text": tokenizers[setting].decode(ids, skip_special_tokens=skip_special_tokens)})

    # Invalid UTF-8 byte sequences: pins how replacement characters are counted.
    for data, note in [
        ("👍".encode()[:1], "first byte of a 4-byte emoji"),
        ("👍".encode()[:2], "two bytes of a 4-byte emoji"),
        ("👍".encode()[:3], "three bytes of a 4-byte emoji"),
        ("👍".encode()[1:], "emoji without its lead byte"),
        (b"a" + "😀".encode()[:2] + b"b", "truncated emoji between letters"),
        ("é".encode()[:1] + b" x", "truncated 2-byte sequence"),
        (b"\xe0\x80\x80", "overlong 3-byte encoding"),
        (b"\xc0\xaf", "overlong 2-byte slash"),
        (b"\xed\xa0\x80", "UTF-16 surrogate"),
        (b"\xf4\x90\x80\x80", "above U+10FFFF"),
        (b"\xff\xfe", "bytes never valid in UTF-8"),
        (b"\xf0\x9f\x98", "truncated at end"),
        (b"\xe2\x82", "truncated 3-byte at end"),
        (b"\x80\x80\x80", "lone continuation bytes"),
    ]:
        add_decode("plain", byte_token_ids(plain, data), note)
    emoji_ids = plain.encode("👍")
    add_decode("plain", emoji_ids[:1], "first BPE token of a split emoji")
    add_decode("plain", emoji_ids[1:], "last BPE token of a split emoji")

    recipe = tokenizers["recipe"]
    wrapped = recipe.encode("<|endoftext|> An idea <|EOS|><|pad|><|pad|>")
    add_decode("recipe", wrapped, "recipe wrapping with padding")
    add_decode("recipe", wrapped, "recipe wrapping, special tokens skipped", skip_special_tokens=True)
    flags = tokenizers["added_flags"]
    for text in ["héllo a sp <mask> €uro [R] xyzzy abc", "say héllo"]:
        ids = flags.encode(text)
        add_decode("added_flags", ids, "added tokens whose text is not byte-level: " + text)
        add_decode("added_flags", ids, "the same, special tokens skipped", skip_special_tokens=True)

    OUT.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "generator": "scripts/make_tokenizer_fixtures.py",
        "reference": "transformers GPT2TokenizerFast (Rust tokenizers backend)",
        "settings": SETTINGS,
        "encode": encode_cases,
        "decode": decode_cases,
    }
    OUT.write_text(compact_json(document), encoding="utf-8")
    print(f"wrote {OUT}: {len(encode_cases)} encode cases, {len(decode_cases)} decode cases, "
          f"{OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
