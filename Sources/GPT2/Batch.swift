/// Token rows of equal length, as the model consumes them: `labels` use -100 for "not counted".
public struct Batch: Sendable, Equatable {
    public static let ignoredLabel: Int32 = -100

    public let batchSize: Int
    public let sequenceLength: Int
    /// [batchSize · sequenceLength] each, row-major.
    public let inputIDs: [Int32]
    public let labels: [Int32]
    /// 1 for real tokens, 0 for padding; nil means every token is real.
    public let attentionMask: [Int32]?

    /// Builds a batch from rows, as Hugging Face's collator would: without `labels`, the labels
    /// are the input ids with -100 where the attention mask is 0.
    public init(inputIDs: [[Int]], attentionMask: [[Int]]? = nil, labels: [[Int]]? = nil) throws {
        guard let first = inputIDs.first, !first.isEmpty else { throw ModelError.invalidBatch(problem: "input_ids is empty") }
        let length = first.count
        func check(_ rows: [[Int]], _ name: String) throws {
            guard rows.count == inputIDs.count else {
                throw ModelError.invalidBatch(problem: "\(name) has \(rows.count) rows but input_ids has \(inputIDs.count)")
            }
            for (index, row) in rows.enumerated() where row.count != length {
                throw ModelError.invalidBatch(problem: "\(name) row \(index) has \(row.count) tokens, expected \(length) (rows must have equal length)")
            }
        }
        try check(inputIDs, "input_ids")
        if let attentionMask {
            try check(attentionMask, "attention_mask")
            guard attentionMask.allSatisfy({ $0.allSatisfy { $0 == 0 || $0 == 1 } }) else {
                throw ModelError.invalidBatch(problem: "attention_mask values must be 0 or 1")
            }
        }
        if let labels { try check(labels, "labels") }
        let ids = inputIDs.flatMap { $0 }
        let mask = attentionMask?.flatMap { $0 }
        let labelValues = labels?.flatMap { $0 } ?? ids.indices.map { mask?[$0] == 0 ? Int(Self.ignoredLabel) : ids[$0] }
        for value in ids + labelValues + (mask ?? []) where Int32(exactly: value) == nil {
            throw ModelError.invalidBatch(problem: "value \(value) does not fit a token id")
        }
        self.init(batchSize: inputIDs.count, sequenceLength: length, inputIDs: ids.map { Int32($0) },
                  labels: labelValues.map { Int32($0) }, attentionMask: mask?.map { Int32($0) })
    }

    public init(batchSize: Int, sequenceLength: Int, inputIDs: [Int32], labels: [Int32], attentionMask: [Int32]? = nil) {
        precondition(inputIDs.count == batchSize * sequenceLength && labels.count == inputIDs.count)
        precondition(attentionMask == nil || attentionMask?.count == inputIDs.count)
        self.batchSize = batchSize
        self.sequenceLength = sequenceLength
        self.inputIDs = inputIDs
        self.labels = labels
        self.attentionMask = attentionMask
    }

    /// The token each position predicts: labels shifted left by one, -100 at each row's end.
    public var targets: [Int32] {
        var targets = [Int32](repeating: Self.ignoredLabel, count: labels.count)
        for b in 0..<batchSize {
            for t in 0..<(sequenceLength - 1) { targets[b * sequenceLength + t] = labels[b * sequenceLength + t + 1] }
        }
        return targets
    }

    /// How many positions hold real tokens (not padding).
    public var realTokenCount: Int { attentionMask?.reduce(0) { $0 + Int($1) } ?? inputIDs.count }

    /// How many positions contribute to the loss.
    public var targetCount: Int { targets.reduce(0) { $0 + ($1 == Self.ignoredLabel ? 0 : 1) } }

    /// Checks every id against the model's vocabulary and context, so no kernel ever indexes out of range.
    public func validate(for config: GPT2Config) throws {
        guard sequenceLength <= config.nPositions else {
            throw ModelError.invalidBatch(problem: "sequence length \(sequenceLength) exceeds the model's n_positions \(config.nPositions)")
        }
        if let bad = inputIDs.first(where: { $0 < 0 || Int($0) >= config.vocabSize }) {
            throw ModelError.invalidBatch(problem: "input id \(bad) is outside the vocabulary (size \(config.vocabSize))")
        }
        if let bad = labels.first(where: { $0 != Self.ignoredLabel && ($0 < 0 || Int($0) >= config.vocabSize) }) {
            throw ModelError.invalidBatch(problem: "label \(bad) is neither -100 nor inside the vocabulary (size \(config.vocabSize))")
        }
    }
}
