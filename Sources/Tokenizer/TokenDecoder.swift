/// The bytes that each token id decodes to, stored back to back.
struct TokenDecoder {
    private struct Entry {
        var start: UInt32 = 0
        var length: UInt32 = 0
        var known = false
        var special = false
    }

    private var bytes: [UInt8] = []
    private var entries: [Entry] = []

    mutating func set(id: Int, token: String, special: Bool) {
        if id >= entries.count {
            entries += repeatElement(Entry(), count: id + 1 - entries.count)
        }
        let tokenBytes = ByteLevel.bytes(forToken: token)
        entries[id] = Entry(start: UInt32(bytes.count), length: UInt32(tokenBytes.count), known: true, special: special)
        bytes += tokenBytes
    }

    /// Joins the tokens' bytes and reads them as UTF-8, replacing each maximal invalid sequence
    /// with U+FFFD like Rust's `String::from_utf8_lossy`.
    func decode(_ ids: [Int], skipSpecialTokens: Bool) throws -> String {
        var text: [UInt8] = []
        text.reserveCapacity(ids.count * 4)
        for id in ids {
            guard id >= 0, id < entries.count, entries[id].known else { throw TokenizerError.unknownTokenID(id) }
            let entry = entries[id]
            if skipSpecialTokens && entry.special { continue }
            text += bytes[Int(entry.start)..<Int(entry.start + entry.length)]
        }
        return String(decoding: text, as: UTF8.self)
    }
}
