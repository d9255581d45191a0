import Foundation

/// Turns text without added tokens into token ids: pre-tokenizes it and byte-pair-encodes each
/// piece, remembering the tokens of pieces it has seen (most pieces of real text are repeats).
struct PieceEncoder {
    let model: BytePairModel
    private var cache = PieceCache()
    private var merger = BytePairMerger()

    init(model: BytePairModel) {
        self.model = model
    }

    mutating func appendTokens(of text: UnsafeBufferPointer<UInt8>, classes: ScalarClassLookup,
                               to ids: inout [Int]) {
        var scanner = PreTokenScanner(text: text, classes: classes)
        while let range = scanner.next() {
            let piece = UnsafeBufferPointer(rebasing: text[range])
            if piece.count == 1 {
                model.forEachByteToken(in: piece) { ids.append(Int($0)) }
                continue
            }
            let key = PieceCache.Key(piece)
            if cache.appendTokens(of: piece, key: key, to: &ids) {
                continue
            }
            let firstNew = ids.count
            merger.merge(piece, model: model, into: &ids)
            cache.insert(piece, key: key, tokens: ids[firstNew...])
        }
    }
}

/// A hash map from piece bytes to their tokens, storing keys and values in flat arrays so that a
/// lookup allocates nothing. It holds at most `maximumEntries` pieces of at most
/// `maximumKeyLength` bytes (longer pieces are rare) and starts over when full, which bounds its
/// memory to about 25 MB on endless input of distinct pieces.
struct PieceCache {
    /// A piece's hash and its first eight bytes (zero-padded), which settle most comparisons
    /// without touching the stored keys.
    struct Key {
        let hash: UInt64
        let prefix: UInt64

        @inline(__always)
        init(_ bytes: UnsafeBufferPointer<UInt8>) {
            let base = UnsafeRawPointer(bytes.baseAddress!)
            var hash = 0x9E37_79B9_7F4A_7C15 ^ UInt64(bytes.count)
            var offset = 0
            while offset + 8 <= bytes.count {
                hash = (hash ^ base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) &* 0xBF58_476D_1CE4_E5B9
                hash ^= hash >> 31
                offset += 8
            }
            var tail: UInt64 = 0
            var shift: UInt64 = 0
            while offset < bytes.count {
                tail |= UInt64(bytes[offset]) << shift
                shift += 8
                offset += 1
            }
            hash = (hash ^ tail) &* 0x94D0_49BB_1331_11EB
            self.hash = hash ^ (hash >> 29)
            prefix = bytes.count >= 8 ? base.loadUnaligned(as: UInt64.self) : tail
        }
    }

    private struct Slot {
        var hash: UInt64 = 0
        var prefix: UInt64 = 0
        /// Zero marks an empty slot (pieces are never empty).
        var keyLength: UInt32 = 0
        /// Where the key's bytes after the prefix start in `keySuffixes`.
        var suffixStart: UInt32 = 0
        /// The token itself when there is one, else where the tokens start in `tokens`.
        var tokenOrStart: UInt32 = 0
        var tokenCount: UInt32 = 0
    }

    private static let initialSlotCount = 4096
    private static let maximumEntries = 1 << 16
    private static let maximumKeyLength = 64
    private var slots = [Slot](repeating: Slot(), count: initialSlotCount)
    private var keySuffixes: [UInt8] = []
    private var tokens: [UInt32] = []
    private var count = 0

    /// Appends the cached tokens of `piece` to `ids`; false if the piece is not cached.
    @inline(__always)
    func appendTokens(of piece: UnsafeBufferPointer<UInt8>, key: Key, to ids: inout [Int]) -> Bool {
        let mask = slots.count - 1
        var index = Int(truncatingIfNeeded: key.hash) & mask
        while true {
            let slot = slots[index]
            if slot.keyLength == 0 { return false }
            if slot.hash == key.hash, slot.prefix == key.prefix, Int(slot.keyLength) == piece.count,
               piece.count <= 8 || keySuffixes.withUnsafeBufferPointer({
                   memcmp($0.baseAddress! + Int(slot.suffixStart), piece.baseAddress! + 8, piece.count - 8) == 0
               }) {
                if slot.tokenCount == 1 {
                    ids.append(Int(slot.tokenOrStart))
                } else {
                    let start = Int(slot.tokenOrStart)
                    for token in tokens[start..<start + Int(slot.tokenCount)] {
                        ids.append(Int(token))
                    }
                }
                return true
            }
            index = (index + 1) & mask
        }
    }

    /// Caches the tokens of a piece that is not cached yet.
    mutating func insert(_ piece: UnsafeBufferPointer<UInt8>, key: Key, tokens pieceTokens: ArraySlice<Int>) {
        guard piece.count <= Self.maximumKeyLength else { return }
        if count == Self.maximumEntries {
            self = PieceCache()
        } else if (count + 1) * 2 > slots.count {
            grow()
        }
        let tokenOrStart = pieceTokens.count == 1 ? UInt32(pieceTokens.first!) : UInt32(tokens.count)
        slots[freeSlot(for: key.hash)] = Slot(
            hash: key.hash, prefix: key.prefix, keyLength: UInt32(piece.count), suffixStart: UInt32(keySuffixes.count),
            tokenOrStart: tokenOrStart, tokenCount: UInt32(pieceTokens.count))
        keySuffixes.append(contentsOf: piece.dropFirst(8))
        if pieceTokens.count != 1 {
            tokens += pieceTokens.lazy.map { UInt32($0) }
        }
        count += 1
    }

    private func freeSlot(for hash: UInt64) -> Int {
        let mask = slots.count - 1
        var index = Int(truncatingIfNeeded: hash) & mask
        while slots[index].keyLength != 0 {
            index = (index + 1) & mask
        }
        return index
    }

    private mutating func grow() {
        let old = slots
        slots = [Slot](repeating: Slot(), count: old.count * 2)
        for slot in old where slot.keyLength != 0 {
            slots[freeSlot(for: slot.hash)] = slot
        }
    }
}
