"""GPT-2's byte-to-character mapping (`bytes_to_unicode` in OpenAI's encoder.py), shared by the
tokenizer scripts."""


def bytes_to_unicode():
    """The printable character that stands for each byte in GPT-2's vocabulary."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    characters = {byte: chr(byte) for byte in printable}
    shifted = 256
    for byte in range(256):
        if byte not in characters:
            characters[byte] = chr(shifted)
            shifted += 1
    return characters
