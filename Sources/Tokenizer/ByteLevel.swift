/// GPT-2's reversible byte-to-character mapping (`bytes_to_unicode` in OpenAI's encoder.py): the
/// vocabulary spells every byte as a printable character so that tokens never contain spaces or
/// control characters. Printable Latin-1 bytes stand for themselves; the other 68 bytes map, in
/// order, to U+0100 onwards.
enum ByteLevel {
    /// The character standing for each byte, indexed by byte.
    static let characterForByte: [Unicode.Scalar] = {
        var printable = Array(UInt8(ascii: "!")...UInt8(ascii: "~"))
        printable += Array(UInt8(0xA1)...UInt8(0xAC)) + Array(UInt8(0xAE)...UInt8(0xFF))
        var mapping = [Unicode.Scalar](repeating: "\0", count: 256)
        var nextShifted: UInt32 = 256
        for byte in 0...255 {
            if printable.contains(UInt8(byte)) {
                mapping[byte] = Unicode.Scalar(UInt8(byte))
            } else {
                mapping[byte] = Unicode.Scalar(nextShifted)!
                nextShifted += 1
            }
        }
        return mapping
    }()

    /// The inverse mapping, indexed by scalar value (all below U+0144); nil for other characters.
    static let byteForCharacter: [UInt8?] = {
        var inverse = [UInt8?](repeating: nil, count: Int(characterForByte.map(\.value).max()!) + 1)
        for (byte, character) in characterForByte.enumerated() {
            inverse[Int(character.value)] = UInt8(byte)
        }
        return inverse
    }()

    /// The bytes a token stands for when decoding. Like the Rust ByteLevel decoder, a token with
    /// any character outside the byte alphabet (an added token such as " sp" or "€uro") is taken
    /// as its own UTF-8 text instead; one whose characters all happen to be in the alphabet is
    /// mapped even if that was not meant ("héllo" decodes to "h\u{FFFD}llo" because "é" stands
    /// for the lone byte 0xE9).
    static func bytes(forToken token: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(token.unicodeScalars.count)
        for scalar in token.unicodeScalars {
            guard Int(scalar.value) < byteForCharacter.count, let byte = byteForCharacter[Int(scalar.value)] else {
                return Array(token.utf8)
            }
            bytes.append(byte)
        }
        return bytes
    }
}
