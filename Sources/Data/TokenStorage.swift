import GPT2
import SafeTensors

/// Every example's token ids back to back in one buffer, with where each example starts. The
/// buffers are owned here, or lie in a mapped token cache file, so that a corpus larger than
/// memory is read from disk as batches need it.
public final class TokenStorage: @unchecked Sendable {  // immutable after init
    /// Every example's input ids, one example after another.
    public let tokens: UnsafeBufferPointer<Int32>
    /// Example i is `tokens[offsets[i]..<offsets[i + 1]]`.
    let offsets: UnsafeBufferPointer<UInt64>
    /// Labels for every token, when the data gave any (an example without them repeats its input
    /// ids here); nil means the labels are the input ids.
    let labels: UnsafeBufferPointer<Int32>?
    /// The cache file that the buffers lie in; nil when they are in memory, owned here.
    public let mapping: MappedFile?

    /// Examples copied into memory.
    public init(examples: [TokenizedExample]) {
        let tokenCount = examples.reduce(0) { $0 + $1.inputIDs.count }
        let tokens = UnsafeMutableBufferPointer<Int32>.allocate(capacity: tokenCount)
        let offsets = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: examples.count + 1)
        let labels = examples.contains { $0.labels != nil } ? UnsafeMutableBufferPointer<Int32>.allocate(capacity: tokenCount) : nil
        offsets[0] = 0
        for (index, example) in examples.enumerated() {
            precondition(example.labels.map { $0.count == example.inputIDs.count } ?? true, "labels and input ids differ in length")
            let start = Int(offsets[index])
            _ = UnsafeMutableBufferPointer(rebasing: tokens[start...]).initialize(fromContentsOf: example.inputIDs)
            if let labels { _ = UnsafeMutableBufferPointer(rebasing: labels[start...]).initialize(fromContentsOf: example.labels ?? example.inputIDs) }
            offsets[index + 1] = UInt64(start + example.inputIDs.count)
        }
        self.tokens = UnsafeBufferPointer(tokens)
        self.offsets = UnsafeBufferPointer(offsets)
        self.labels = labels.map { UnsafeBufferPointer($0) }
        mapping = nil
    }

    /// Buffers that lie in `mapping`, checked already.
    init(tokens: UnsafeBufferPointer<Int32>, offsets: UnsafeBufferPointer<UInt64>, mapping: MappedFile) {
        self.tokens = tokens
        self.offsets = offsets
        labels = nil
        self.mapping = mapping
    }

    deinit {
        guard mapping == nil else { return }
        tokens.deallocate()
        offsets.deallocate()
        labels?.deallocate()
    }

    public var count: Int { offsets.count - 1 }

    /// Passes the tokens to `body` in parts. Tokens in a mapped file leave this process's memory
    /// once read (see `MappedFile.readOnce`), so that a pass over all of them holds none.
    public func forEachTokenChunk(_ body: (UnsafeBufferPointer<Int32>) throws -> Void) rethrows {
        guard let mapping else { return try body(tokens) }
        try mapping.readOnce(UnsafeRawBufferPointer(tokens)) { try body($0.assumingMemoryBound(to: Int32.self)) }
    }

    /// The first token id outside 0..<vocabularySize, or label outside it that is not the ignored
    /// label, with the example that holds it; nil when every id fits. Of a token and a label both
    /// out of range, the one in the earlier example.
    public func firstIDOutside(vocabularySize: Int) -> (example: Int, value: Int32, isLabel: Bool)? {
        func outside(_ id: Int32) -> Bool { id < 0 || Int(id) >= vocabularySize }
        var token: (position: Int, value: Int32, isLabel: Bool)?
        forEachTokenChunk { chunk in
            guard token == nil, let index = chunk.firstIndex(where: outside) else { return }
            token = (chunk.baseAddress! - tokens.baseAddress! + index, chunk[index], false)
        }
        let label = labels.flatMap { labels in
            labels.firstIndex { $0 != Batch.ignoredLabel && outside($0) }.map { (position: $0, value: labels[$0], isLabel: true) }
        }
        guard let first = [token, label].compactMap({ $0 }).min(by: { $0.position < $1.position }) else { return nil }
        return (example(holding: first.position), first.value, first.isLabel)
    }

    /// The example whose tokens include position `position` of `tokens`.
    private func example(holding position: Int) -> Int {
        // The first example that ends after `position`; empty examples end where they start.
        var (low, high) = (0, count - 1)
        while low < high {
            let middle = (low + high) / 2
            if Int(offsets[middle + 1]) > position { high = middle } else { low = middle + 1 }
        }
        return low
    }

    /// Where example `index` lies in `tokens` (and `labels`).
    func range(of index: Int) -> Range<Int> { Int(offsets[index])..<Int(offsets[index + 1]) }
}
