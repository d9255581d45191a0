import GPT2

/// Tokenized examples ready for batching, and what preparing them did.
public struct Dataset: Sendable, Equatable {
    public var examples: [TokenizedExample]
    /// How many examples were cut to the block size.
    public var truncatedCount = 0

    public init(examples: [TokenizedExample], truncatedCount: Int = 0) {
        self.examples = examples
        self.truncatedCount = truncatedCount
    }

    public var count: Int { examples.count }
    public var tokenCount: Int { examples.reduce(0) { $0 + $1.inputIDs.count } }

    /// Wraps each text with `template` (`{text}` marks where it goes, e.g. the recipe's
    /// "<|endoftext|> {text} <|EOS|>") and encodes it; `truncating` then cuts to the block size.
    public static func encode(_ texts: [String], template: String, encode: (String) -> [Int]) -> [TokenizedExample] {
        texts.map { TokenizedExample(inputIDs: encode(template.replacingOccurrences(of: "{text}", with: $0)).map { Int32($0) }) }
    }

    /// Examples cut to `blockSize`, counting how many were cut.
    public static func truncating(_ examples: [TokenizedExample], blockSize: Int) -> Dataset {
        var truncated = 0
        let cut = examples.map { example -> TokenizedExample in
            guard example.inputIDs.count > blockSize else { return example }
            truncated += 1
            return TokenizedExample(inputIDs: Array(example.inputIDs.prefix(blockSize)), labels: example.labels.map { Array($0.prefix(blockSize)) })
        }
        return Dataset(examples: cut, truncatedCount: truncated)
    }

    /// Concatenates every example into blocks of exactly `blockSize` tokens (what the `group_texts`
    /// recipe does); the tail shorter than a block is dropped.
    public func packed(blockSize: Int) -> Dataset {
        var stream: [Int32] = []
        var labelStream: [Int32] = []
        for example in examples {
            stream += example.inputIDs
            labelStream += example.labels ?? example.inputIDs
        }
        let blocks = stream.count / blockSize
        return Dataset(examples: (0..<blocks).map { block in
            let range = (block * blockSize)..<((block + 1) * blockSize)
            let labels = Array(labelStream[range])
            let inputs = Array(stream[range])
            return TokenizedExample(inputIDs: inputs, labels: labels == inputs ? nil : labels)
        }, truncatedCount: truncatedCount)
    }

    /// Splits off a seeded random `fraction` as validation data (at least one example each side).
    public func split(validationFraction fraction: Double, seed: UInt64) -> (train: Dataset, validation: Dataset) {
        let order = seededPermutation(count: count, seed: seed)
        let validationCount = min(count - 1, max(1, Int((Double(count) * fraction).rounded())))
        let validationIndices = Set(order.prefix(validationCount))
        var train = Dataset(examples: [], truncatedCount: truncatedCount)
        var validation = Dataset(examples: [])
        for (index, example) in examples.enumerated() {
            if validationIndices.contains(index) { validation.examples.append(example) } else { train.examples.append(example) }
        }
        return (train, validation)
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
