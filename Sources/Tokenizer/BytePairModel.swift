/// The immutable part of byte-level BPE: the token of each single byte and the merge rules,
/// all as token ids.
struct BytePairModel {
    /// Marks a byte whose character is missing from the vocabulary.
    static let missingToken = UInt32.max

    /// The token id of each byte's byte-level character, or `missingToken`.
    let byteTokenIDs: [UInt32]
    let merges: MergeTable
}

/// Merge rules keyed by the pair of token ids they join: an open-addressing hash table, because
/// the BPE loop looks pairs up far more often than anything else it does.
struct MergeTable {
    struct Merge {
        let rank: UInt32
        let merged: UInt32
    }

    private static let emptyKey = UInt64.max
    private var keys: [UInt64]
    private var merges: [Merge]
    private let mask: Int

    init(minimumCapacity: Int) {
        var capacity = 16
        while capacity < minimumCapacity * 2 {
            capacity *= 2
        }
        keys = [UInt64](repeating: Self.emptyKey, count: capacity)
        merges = [Merge](repeating: Merge(rank: 0, merged: 0), count: capacity)
        mask = capacity - 1
    }

    /// Adds a rule; a later rule for the same pair replaces the earlier one, as in Hugging Face's
    /// merge map.
    mutating func insert(left: UInt32, right: UInt32, _ merge: Merge) {
        let key = UInt64(left) << 32 | UInt64(right)
        var slot = Self.slot(for: key, mask: mask)
        while keys[slot] != Self.emptyKey && keys[slot] != key {
            slot = (slot + 1) & mask
        }
        keys[slot] = key
        merges[slot] = merge
    }

    @inline(__always)
    func merge(_ left: UInt32, _ right: UInt32) -> Merge? {
        let key = UInt64(left) << 32 | UInt64(right)
        var slot = Self.slot(for: key, mask: mask)
        while true {
            let found = keys[slot]
            if found == key { return merges[slot] }
            if found == Self.emptyKey { return nil }
            slot = (slot + 1) & mask
        }
    }

    @inline(__always)
    private static func slot(for key: UInt64, mask: Int) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
    }
}

/// Applies BPE merges to one piece, always merging the lowest-ranked adjacent pair and, among equal
/// ranks, the leftmost, like Hugging Face's `Word::merge_all`. A priority queue keeps long pieces
/// (say a 100 KB run of digits) at O(n log n). The buffers are reused between pieces.
struct BytePairMerger {
    /// Token id of each symbol; a merged-away symbol holds `deadSymbol`.
    private var symbols: [UInt32] = []
    private var previous: [Int32] = []
    private var following: [Int32] = []
    private var queue = CandidateQueue()
    private static let deadSymbol = UInt32.max

    /// Appends the tokens of `piece` to `output`.
    mutating func merge(_ piece: UnsafeBufferPointer<UInt8>, model: BytePairModel, into output: inout [Int]) {
        symbols.removeAll(keepingCapacity: true)
        for byte in piece {
            let id = model.byteTokenIDs[Int(byte)]
            // Hugging Face drops characters missing from the vocabulary when it has no unknown token.
            if id != BytePairModel.missingToken {
                symbols.append(id)
            }
        }
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
