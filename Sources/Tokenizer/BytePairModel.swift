/// The immutable part of byte-level BPE: the token of each single byte and the merge rules,
/// all as token ids.
struct BytePairModel {
    /// Marks a byte whose character is missing from the vocabulary.
    static let missingToken = UInt32.max

    /// The token id of each byte's byte-level character, or `missingToken`.
    let byteTokenIDs: [UInt32]
    let merges: MergeTable

    /// Calls `body` with the token of each byte of `piece`, leaving out bytes whose character is
    /// missing from the vocabulary, as Hugging Face does when the model has no unknown token.
    @inline(__always)
    func forEachByteToken(in piece: UnsafeBufferPointer<UInt8>, _ body: (UInt32) -> Void) {
        for byte in piece {
            let id = byteTokenIDs[Int(byte)]
            if id != Self.missingToken {
                body(id)
            }
        }
    }
}

/// Merge rules keyed by the pair of token ids they join: an open-addressing hash table, because
/// the BPE loop looks pairs up far more often than anything else it does.
struct MergeTable {
    struct Merge {
        let rank: UInt32
        let merged: UInt32
    }

    /// Key and value side by side, so that a lookup touches one cache line.
    private struct Slot {
        var key: UInt64
        var merge: Merge
    }

    private static let emptyKey = UInt64.max
    private var slots: [Slot]
    private let mask: Int

    init(minimumCapacity: Int) {
        var capacity = 16
        while capacity < minimumCapacity * 2 {
            capacity *= 2
        }
        slots = [Slot](repeating: Slot(key: Self.emptyKey, merge: Merge(rank: 0, merged: 0)), count: capacity)
        mask = capacity - 1
    }

    /// Adds a rule; a later rule for the same pair replaces the earlier one, as in Hugging Face's
    /// merge map.
    mutating func insert(left: UInt32, right: UInt32, _ merge: Merge) {
        let key = UInt64(left) << 32 | UInt64(right)
        var index = Self.index(for: key, mask: mask)
        while slots[index].key != Self.emptyKey && slots[index].key != key {
            index = (index + 1) & mask
        }
        slots[index] = Slot(key: key, merge: merge)
    }

    @inline(__always)
    func merge(_ left: UInt32, _ right: UInt32) -> Merge? {
        let key = UInt64(left) << 32 | UInt64(right)
        var index = Self.index(for: key, mask: mask)
        while true {
            let slot = slots[index]
            if slot.key == key { return slot.merge }
            if slot.key == Self.emptyKey { return nil }
            index = (index + 1) & mask
        }
    }

    @inline(__always)
    private static func index(for key: UInt64, mask: Int) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
    }
}

/// Applies BPE merges to one piece like Hugging Face's `Word::merge_all`: always the
/// lowest-ranked adjacent pair and, among equal ranks, the leftmost. (Hugging Face's queue can
/// also take a stale candidate whose pair has changed into another pair making the same token;
/// that needs two merges with one result, which GPT-2, where merge i makes token 256 + i, lacks.)
struct BytePairMerger {
    /// Pieces up to this many bytes (nearly all words) are merged by rescanning every pair after
    /// each merge, which is quadratic but allocation-free and fastest for short pieces. Longer
    /// pieces use a priority queue, which keeps, say, a 100 KB run of digits at O(n log n).
    static let longPieceThreshold = 64

    private var queueMerger = QueueMerger()

    /// Appends the tokens of `piece` to `output`.
    mutating func merge(_ piece: UnsafeBufferPointer<UInt8>, model: BytePairModel, into output: inout [Int]) {
        if piece.count <= Self.longPieceThreshold {
            Self.mergeByScanning(piece, model: model, into: &output)
        } else {
            queueMerger.merge(piece, model: model, into: &output)
        }
    }

    static func mergeByScanning(_ piece: UnsafeBufferPointer<UInt8>, model: BytePairModel, into output: inout [Int]) {
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 3 * piece.count) { buffer in
            // Symbol i's token, and the rank and result of merging symbols i and i + 1.
            let symbols = buffer.baseAddress!
            let pairRanks = symbols + piece.count
            let pairResults = pairRanks + piece.count
            var count = 0
            model.forEachByteToken(in: piece) { id in
                symbols[count] = id
                count += 1
            }
            func updatePair(at index: Int) {
                let merge = model.merges.merge(symbols[index], symbols[index + 1])
                pairRanks[index] = merge?.rank ?? .max
                pairResults[index] = merge?.merged ?? 0
            }
            for index in 0..<max(count - 1, 0) {
                updatePair(at: index)
            }
            while count > 1 {
                var best = 0
                for index in 1..<count - 1 where pairRanks[index] < pairRanks[best] {
                    best = index
                }
                guard pairRanks[best] != .max else { break }
                symbols[best] = pairResults[best]
                // Close the gaps left by symbol best + 1 and by pair best + 1.
                for index in best + 1..<count - 1 {
                    symbols[index] = symbols[index + 1]
                    if index + 1 < count - 1 {
                        pairRanks[index] = pairRanks[index + 1]
                        pairResults[index] = pairResults[index + 1]
                    }
                }
                count -= 1
                if best > 0 {
                    updatePair(at: best - 1)
                }
                if best < count - 1 {
                    updatePair(at: best)
                }
            }
            for index in 0..<count {
                output.append(Int(symbols[index]))
            }
        }
    }
}

/// Merges with a priority queue of candidate pairs, skipping candidates that earlier merges made
/// stale. Its buffers are reused between pieces.
struct QueueMerger {
    /// Token id of each symbol; a merged-away symbol holds `deadSymbol`.
    private var symbols: [UInt32] = []
    private var previous: [Int32] = []
    private var following: [Int32] = []
    private var queue = CandidateQueue()
    private static let deadSymbol = UInt32.max

    mutating func merge(_ piece: UnsafeBufferPointer<UInt8>, model: BytePairModel, into output: inout [Int]) {
        symbols.removeAll(keepingCapacity: true)
        model.forEachByteToken(in: piece) { symbols.append($0) }
        let count = symbols.count
        guard count > 0 else { return }
        previous.removeAll(keepingCapacity: true)
        following.removeAll(keepingCapacity: true)
        queue.removeAll()
        for index in 0..<count {
            previous.append(Int32(index - 1))
            following.append(index + 1 < count ? Int32(index + 1) : -1)
            if index + 1 < count, let merge = model.merges.merge(symbols[index], symbols[index + 1]) {
                queue.push(Candidate(rank: merge.rank, position: UInt32(index), merged: merge.merged))
            }
        }
        while let candidate = queue.popMin() {
            let position = Int(candidate.position)
            let left = symbols[position]
            let right = Int(following[position])
            // Skip candidates made stale by earlier merges; like Hugging Face, a candidate is
            // current when its pair still merges into the same token.
            guard left != Self.deadSymbol, right >= 0,
                  let merge = model.merges.merge(left, symbols[right]), merge.merged == candidate.merged
            else { continue }
            symbols[position] = merge.merged
            symbols[right] = Self.deadSymbol
            let after = following[right]
            following[position] = after
            if after >= 0 {
                previous[Int(after)] = Int32(position)
                if let next = model.merges.merge(merge.merged, symbols[Int(after)]) {
                    queue.push(Candidate(rank: next.rank, position: UInt32(position), merged: next.merged))
                }
            }
            let before = previous[position]
            if before >= 0, let next = model.merges.merge(symbols[Int(before)], merge.merged) {
                queue.push(Candidate(rank: next.rank, position: UInt32(before), merged: next.merged))
            }
        }
        var index = 0
        while index >= 0 {
            output.append(Int(symbols[index]))
            index = Int(following[index])
        }
    }
}

/// A possible merge of the symbol at `position` with the one after it.
private struct Candidate {
    let rank: UInt32
    let position: UInt32
    let merged: UInt32

    /// Lower rank first, then leftmost.
    var order: UInt64 { UInt64(rank) << 32 | UInt64(position) }
}

/// A binary min-heap of merge candidates.
private struct CandidateQueue {
    private var heap: [Candidate] = []

    mutating func removeAll() {
        heap.removeAll(keepingCapacity: true)
    }

    mutating func push(_ candidate: Candidate) {
        heap.append(candidate)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].order < heap[parent].order else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func popMin() -> Candidate? {
        guard let last = heap.popLast() else { return nil }
        guard !heap.isEmpty else { return last }
        let minimum = heap[0]
        heap[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { break }
            let right = left + 1
            let smaller = right < heap.count && heap[right].order < heap[left].order ? right : left
            guard heap[smaller].order < heap[parent].order else { break }
            heap.swapAt(smaller, parent)
            parent = smaller
        }
        return minimum
    }
}
