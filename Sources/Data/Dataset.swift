import GPT2

/// Tokenized examples ready for batching: a view of a `TokenStorage` that selects examples, cuts
/// them to a block size or packs them into blocks without copying their tokens. An example is
/// copied out only when it is asked for, as a batch is built.
public struct Dataset: RandomAccessCollection, Sendable {
    public let storage: TokenStorage
    /// The stored examples this view holds, in order; nil means all of them.
    private let selection: [Int]?
    /// Longer examples are cut to this many tokens.
    private let lengthLimit: Int
    private let packing: Packing?
    /// How many examples were cut to the block size.
    public let truncatedCount: Int

    /// Blocks of `size` tokens cut from the selected examples laid end to end.
    private struct Packing: Sendable {
        let size: Int
        /// Where each selected example starts in that stream, and where the last one ends.
        let exampleStarts: [Int]
        /// Only the first blocks (`--max-train-samples`); nil: all of them.
        var blockLimit: Int?
        var count: Int { Swift.min(exampleStarts.last! / size, blockLimit ?? .max) }
    }

    public init(storage: TokenStorage) {
        self.init(storage: storage, selection: nil, lengthLimit: .max, packing: nil, truncatedCount: 0)
    }

    /// Examples copied into memory.
    public init(examples: [TokenizedExample]) {
        self.init(storage: TokenStorage(examples: examples))
    }

    private init(storage: TokenStorage, selection: [Int]?, lengthLimit: Int, packing: Packing?, truncatedCount: Int) {
        self.storage = storage
        self.selection = selection
        self.lengthLimit = lengthLimit
        self.packing = packing
        self.truncatedCount = truncatedCount
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { packing?.count ?? selection?.count ?? storage.count }

    public subscript(position: Int) -> TokenizedExample {
        guard let packing else { return copying([storedRange(position)]) }
        // The block takes the rest of the example it starts in, then the next ones until it is full.
        let start = position * packing.size
        var (low, high) = (0, packing.exampleStarts.count)  // low ends at the first example starting after `start`
        while low < high {
            let middle = (low + high) / 2
            if packing.exampleStarts[middle] > start { high = middle } else { low = middle + 1 }
        }
        var example = low - 1
        var skip = start - packing.exampleStarts[example]
        var ranges: [Range<Int>] = []
        var needed = packing.size
        while needed > 0 {
            let range = storedRange(example)
            let taken = range.lowerBound + skip..<Swift.min(range.upperBound, range.lowerBound + skip + needed)
            ranges.append(taken)
            needed -= taken.count
            skip = 0
            example += 1
        }
        return copying(ranges)
    }

    /// The number of tokens in example `position`, without copying it.
    func length(at position: Int) -> Int { packing?.size ?? storedRange(position).count }

    public var tokenCount: Int { indices.reduce(0) { $0 + length(at: $1) } }

    /// The tokens of the longest example: what a padded batch is at most wide.
    public var longestExample: Int { indices.reduce(0) { Swift.max($0, length(at: $1)) } }

    /// Examples cut to `blockSize`, counting how many were cut.
    public func truncated(to blockSize: Int) -> Dataset {
        precondition(packing == nil, "truncate before packing")
        let limit = Swift.min(lengthLimit, blockSize)
        let cut = indices.count { storedRange($0).count > limit }
        return Dataset(storage: storage, selection: selection, lengthLimit: limit, packing: nil, truncatedCount: cut)
    }

    /// Concatenates every example into blocks of exactly `blockSize` tokens (what the `group_texts`
    /// recipe does); the tail shorter than a block is dropped.
    public func packed(blockSize: Int) -> Dataset {
        precondition(packing == nil, "pack once")
        var starts = [0]
        starts.reserveCapacity(count + 1)
        for position in indices { starts.append(starts.last! + length(at: position)) }
        return Dataset(storage: storage, selection: selection, lengthLimit: lengthLimit,
                       packing: Packing(size: blockSize, exampleStarts: starts), truncatedCount: truncatedCount)
    }

    /// The first `limit` examples (or blocks, once packed).
    public func first(_ limit: Int) -> Dataset {
        if var packing {
            packing.blockLimit = Swift.min(limit, packing.count)
            return Dataset(storage: storage, selection: selection, lengthLimit: lengthLimit, packing: packing, truncatedCount: truncatedCount)
        }
        let kept = Array(indices.prefix(limit))
        return Dataset(storage: storage, selection: kept.map { selection?[$0] ?? $0 }, lengthLimit: lengthLimit, packing: nil,
                       truncatedCount: kept.count { storage.range(of: selection?[$0] ?? $0).count > lengthLimit })
    }

    /// Splits off a seeded random `fraction` as validation data (at least one example each side).
    public func split(validationFraction fraction: Double, seed: UInt64) -> (train: Dataset, validation: Dataset) {
        precondition(packing == nil, "split before packing")
        let order = seededPermutation(count: count, seed: seed)
        let validationCount = Swift.min(count - 1, Swift.max(1, Int((Double(count) * fraction).rounded())))
        var isValidation = [Bool](repeating: false, count: count)
        for position in order.prefix(validationCount) { isValidation[position] = true }
        func selecting(_ positions: [Int], truncatedCount: Int) -> Dataset {
            Dataset(storage: storage, selection: selection.map { selection in positions.map { selection[$0] } } ?? positions,
                    lengthLimit: lengthLimit, packing: nil, truncatedCount: truncatedCount)
        }
        return (selecting(indices.filter { !isValidation[$0] }, truncatedCount: truncatedCount),
                selecting(indices.filter { isValidation[$0] }, truncatedCount: 0))
    }

    /// Where the (cut) example at `position`, before packing, lies in the storage.
    private func storedRange(_ position: Int) -> Range<Int> {
        let range = storage.range(of: selection?[position] ?? position)
        return range.lowerBound..<range.lowerBound + Swift.min(range.count, lengthLimit)
    }

    /// The tokens (and labels) of `ranges` of the storage, one after another.
    private func copying(_ ranges: [Range<Int>]) -> TokenizedExample {
        func gather(_ buffer: UnsafeBufferPointer<Int32>) -> [Int32] { ranges.flatMap { buffer[$0] } }
        return TokenizedExample(inputIDs: gather(storage.tokens), labels: storage.labels.map(gather))
    }
}

/// A Fisher–Yates shuffle of 0..<count from `seed`: the same order on every machine.
public func seededPermutation(count: Int, seed: UInt64) -> [Int] {
    var generator = SeededGenerator(seed: seed)
    var order = Array(0..<count)
    guard count > 1 else { return order }
    for i in stride(from: count - 1, to: 0, by: -1) {
        let j = Int(generator.next() % UInt64(i + 1))
        order.swapAt(i, j)
    }
    return order
}
