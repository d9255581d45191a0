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
            if range.count == 1 {
                let id = model.byteTokenIDs[Int(text[range.lowerBound])]
                if id != BytePairModel.missingToken {
                    ids.append(Int(id))
                }
                continue
            }
            let piece = UnsafeBufferPointer(rebasing: text[range])
            let hash = PieceCache.hash(piece)
            if cache.appendTokens(of: piece, hash: hash, to: &ids) {
                continue
            }
            let firstNew = ids.count
            merger.merge(piece, model: model, into: &ids)
            cache.insert(piece, hash: hash, tokens: ids[firstNew...])
        }
    }
}

/// A hash map from piece bytes to their tokens, storing keys and values in flat arrays so that a
/// lookup allocates nothing. It holds at most `maximumEntries` pieces of at most
/// `maximumKeyLength` bytes and starts over when full, which bounds its memory (about 20 MB) on
/// endless input of distinct pieces.
struct PieceCache {
    private struct Slot {
        /// Zero marks an empty slot (pieces are never empty).
        var keyLength: UInt32 = 0
        var keyStart: UInt32 = 0
        var tokensStart: UInt32 = 0
        var tokenCount: UInt32 = 0
        var hash: UInt64 = 0
    }

    private static let initialSlotCount = 4096
    private static let maximumEntries = 1 << 16
    private static let maximumKeyLength = 256
    private var slots = [Slot](repeating: Slot(), count: initialSlotCount)
    private var keyBytes: [UInt8] = []
    private var tokens: [Int] = []
    private var count = 0

    @inline(__always)
    static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
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
        return hash ^ (hash >> 29)
    }

    /// Appends the cached tokens of `piece` to `ids`; false if the piece is not cached.
    @inline(__always)
    func appendTokens(of piece: UnsafeBufferPointer<UInt8>, hash: UInt64, to ids: inout [Int]) -> Bool {
        let mask = slots.count - 1
        var index = Int(truncatingIfNeeded: hash) & mask
        while true {
            let slot = slots[index]
            if slot.keyLength == 0 { return false }
            if slot.hash == hash, Int(slot.keyLength) == piece.count,
               keyBytes.withUnsafeBufferPointer({
                   memcmp($0.baseAddress! + Int(slot.keyStart), piece.baseAddress!, piece.count) == 0
               }) {
                if slot.tokenCount == 1 {
                    ids.append(tokens[Int(slot.tokensStart)])
                } else {
                    let start = Int(slot.tokensStart)
                    ids.append(contentsOf: tokens[start..<start + Int(slot.tokenCount)])
                }
                return true
            }
            index = (index + 1) & mask
        }
    }

    /// Caches the tokens of a piece that is not cached yet.
    mutating func insert(_ piece: UnsafeBufferPointer<UInt8>, hash: UInt64, tokens pieceTokens: ArraySlice<Int>) {
        guard piece.count <= Self.maximumKeyLength else { return }
        if count == Self.maximumEntries {
            self = PieceCache()
        } else if (count + 1) * 2 > slots.count {
            grow()
        }
        slots[freeSlot(for: hash)] = Slot(
            keyLength: UInt32(piece.count), keyStart: UInt32(keyBytes.count),
            tokensStart: UInt32(tokens.count), tokenCount: UInt32(pieceTokens.count), hash: hash)
        keyBytes.append(contentsOf: piece)
        tokens.append(contentsOf: pieceTokens)
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
