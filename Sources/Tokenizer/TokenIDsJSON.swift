/// A parser for the one JSON shape that holds a whole vocabulary: a flat object of integers keyed
/// by strings, as in vocab.json and added_tokens.json. It is several times faster than Foundation's
/// JSON readers on GPT-2's 50,257 entries, and reports syntax errors by line and column.
struct TokenIDsJSON {
    struct SyntaxError: Error {
        let message: String
    }

    private let bytes: [UInt8]
    private var position = 0

    static func parse(_ bytes: [UInt8]) throws(SyntaxError) -> [String: Int] {
        var parser = TokenIDsJSON(bytes: bytes)
        return try parser.object()
    }

    private init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    private mutating func object() throws(SyntaxError) -> [String: Int] {
        var result: [String: Int] = [:]
        // Room for GPT-2's vocab.json, whose entries average 16 bytes, without rehashing.
        result.reserveCapacity(bytes.count / 12)
        try expect(UInt8(ascii: "{"))
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            position += 1
        } else {
            while true {
                skipWhitespace()
                let key = try string()
                try expect(UInt8(ascii: ":"))
                skipWhitespace()
                result[key] = try integer()
                skipWhitespace()
                if peek() == UInt8(ascii: ",") {
                    position += 1
                } else {
                    try expect(UInt8(ascii: "}"))
                    break
                }
            }
        }
        skipWhitespace()
        guard position == bytes.count else { throw error("unexpected text after the object") }
        return result
    }

    private func peek() -> UInt8? {
        position < bytes.count ? bytes[position] : nil
    }

    private mutating func skipWhitespace() {
        while let byte = peek(), byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 {
            position += 1
        }
    }

    private mutating func expect(_ byte: UInt8) throws(SyntaxError) {
        skipWhitespace()
        guard peek() == byte else { throw error("expected \"\(Character(Unicode.Scalar(byte)))\"") }
        position += 1
    }

    private mutating func integer() throws(SyntaxError) -> Int {
        let start = position
        if peek() == UInt8(ascii: "-") {
            position += 1
        }
        while let byte = peek(), (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) {
            position += 1
        }
        guard let value = Int(String(decoding: bytes[start..<position], as: UTF8.self)) else {
            position = start
            throw error("expected an integer token id")
        }
        return value
    }

    private mutating func string() throws(SyntaxError) -> String {
        guard peek() == UInt8(ascii: "\"") else { throw error("expected a string") }
        position += 1
        var utf8: [UInt8] = []
        while true {
            guard let byte = peek() else { throw error("unterminated string") }
            position += 1
            switch byte {
            case UInt8(ascii: "\""):
                guard let string = String(validating: utf8, as: UTF8.self) else { throw error("invalid UTF-8") }
                return string
            case UInt8(ascii: "\\"):
                try appendEscape(to: &utf8)
            case ..<0x20:
                throw error("control character in a string")
            default:
                utf8.append(byte)
            }
        }
    }

    private mutating func appendEscape(to utf8: inout [UInt8]) throws(SyntaxError) {
        guard let byte = peek() else { throw error("unterminated string") }
        position += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(byte)
        case UInt8(ascii: "b"): utf8.append(0x08)
        case UInt8(ascii: "f"): utf8.append(0x0C)
        case UInt8(ascii: "n"): utf8.append(0x0A)
        case UInt8(ascii: "r"): utf8.append(0x0D)
        case UInt8(ascii: "t"): utf8.append(0x09)
        case UInt8(ascii: "u"): try appendUnicodeEscape(to: &utf8)
        default: throw error("invalid escape")
        }
    }

    /// Appends the scalar of a `\uXXXX` escape (or a pair of them) after its "\u".
    private mutating func appendUnicodeEscape(to utf8: inout [UInt8]) throws(SyntaxError) {
        var value = try hexQuad()
        if (0xD800..<0xDC00).contains(value) {
            // A UTF-16 surrogate pair spells a scalar above U+FFFF.
            guard peek() == UInt8(ascii: "\\") else { throw error("unpaired surrogate") }
            position += 1
            guard peek() == UInt8(ascii: "u") else { throw error("unpaired surrogate") }
            position += 1
            let low = try hexQuad()
            guard (0xDC00..<0xE000).contains(low) else { throw error("unpaired surrogate") }
            value = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)
        }
        guard let scalar = Unicode.Scalar(value) else { throw error("unpaired surrogate") }
        utf8 += Array(String(scalar).utf8)
    }

    private mutating func hexQuad() throws(SyntaxError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let byte = peek(), let digit = Character(Unicode.Scalar(byte)).hexDigitValue else {
                throw error("invalid \\u escape")
            }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }

    /// An error at the current position, located by line and column.
    private func error(_ message: String) -> SyntaxError {
        let before = bytes[..<min(position, bytes.count)]
        let line = before.count(where: { $0 == 0x0A }) + 1
        let column = before.count - (before.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0) + 1
        return SyntaxError(message: "line \(line) column \(column): \(message)")
    }
}
