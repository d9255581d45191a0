import GPT2

/// Turns examples into a padded batch as `DataCollatorForLanguageModeling(mlm=False)` does with
/// right padding: pad to the longest example, attention mask 0 and label -100 on the padding.
public struct Collator: Sendable {
    public let padTokenID: Int32

    public init(padTokenID: Int32) { self.padTokenID = padTokenID }

    /// nil for an empty list (a rank whose slice of a short final step is empty).
    public func batch(_ examples: [TokenizedExample]) -> Batch? {
        guard let length = examples.map(\.inputIDs.count).max() else { return nil }
        var ids: [Int32] = [], labels: [Int32] = [], mask: [Int32] = []
        ids.reserveCapacity(examples.count * length)
        for example in examples {
            let padding = length - example.inputIDs.count
            ids += example.inputIDs + Array(repeating: padTokenID, count: padding)
            labels += (example.labels ?? example.inputIDs) + Array(repeating: Batch.ignoredLabel, count: padding)
            mask += Array(repeating: 1, count: example.inputIDs.count) + Array(repeating: 0, count: padding)
        }
        let padded = mask.contains(0)
        return Batch(batchSize: examples.count, sequenceLength: length, inputIDs: ids, labels: labels, attentionMask: padded ? mask : nil)
    }
}

/// Which examples each optimisation step uses on each rank. Epoch e visits the examples in a
/// seeded permutation of its own; step s of the epoch takes the next `globalBatchSize` of them
/// (the last step of an epoch may take fewer). So the order depends only on the seed and the
/// global batch size, not on how many ranks share it.
public final class DataLoader {
    public let dataset: Dataset
    public let perDeviceBatchSize: Int
    public let gradientAccumulationSteps: Int
    public let worldSize: Int
    public let seed: UInt64
    public let collator: Collator
    private var cachedEpoch: (epoch: Int, order: [Int])?

    public init(dataset: Dataset, perDeviceBatchSize: Int, gradientAccumulationSteps: Int, worldSize: Int, seed: UInt64, collator: Collator) {
        precondition(perDeviceBatchSize > 0 && gradientAccumulationSteps > 0 && worldSize > 0 && dataset.count > 0)
        self.dataset = dataset
        self.perDeviceBatchSize = perDeviceBatchSize
        self.gradientAccumulationSteps = gradientAccumulationSteps
        self.worldSize = worldSize
        self.seed = seed
        self.collator = collator
    }

    public var globalBatchSize: Int { perDeviceBatchSize * gradientAccumulationSteps * worldSize }
    public var stepsPerEpoch: Int { (dataset.count + globalBatchSize - 1) / globalBatchSize }

    public func order(epoch: Int) -> [Int] {
        if let cachedEpoch, cachedEpoch.epoch == epoch { return cachedEpoch.order }
        let order = seededPermutation(count: dataset.count, seed: seed ^ (UInt64(epoch + 1) &* 0x9E37_79B9_7F4A_7C15))
        cachedEpoch = (epoch, order)
        return order
    }

    /// The micro-batches that `rank` runs for global step `step` (0-based, counted from the start
    /// of training), in order; a micro-batch is nil where this rank's slice is empty.
    public func microBatches(step: Int, rank: Int) -> [Batch?] {
        exampleIndices(step: step, rank: rank).map { collator.batch($0.map { dataset[$0] }) }
    }

    /// The dataset indices of each of `rank`'s micro-batches for global step `step`.
    func exampleIndices(step: Int, rank: Int) -> [[Int]] {
        let start = (step % stepsPerEpoch) * globalBatchSize
        let order = order(epoch: step / stepsPerEpoch)
        return Self.shard(order[start..<min(start + globalBatchSize, order.count)], rank: rank, worldSize: worldSize,
                          perDeviceBatchSize: perDeviceBatchSize, gradientAccumulationSteps: gradientAccumulationSteps)
    }

    /// How many of the tokens in the first epoch's padded batches (all ranks) are padding, and
    /// how many tokens those batches hold: from the examples' lengths, without building batches.
    public func firstEpochPadding() -> (padding: Int, total: Int) {
        var padding = 0, total = 0
        for step in 0..<stepsPerEpoch {
            for rank in 0..<worldSize {
                for indices in exampleIndices(step: step, rank: rank) {
                    let lengths = indices.map(dataset.length(at:))
                    let padded = (lengths.max() ?? 0) * lengths.count
                    total += padded
                    padding += padded - lengths.reduce(0, +)
                }
            }
        }
        return (padding, total)
    }

    /// Where `rank`'s micro-batch `microBatch` starts in its step's global batch: (a·W + r)·B.
    public func firstExample(microBatch: Int, rank: Int) -> Int {
        Self.firstExample(microBatch: microBatch, rank: rank, worldSize: worldSize, perDeviceBatchSize: perDeviceBatchSize)
    }

    static func firstExample(microBatch: Int, rank: Int, worldSize: Int, perDeviceBatchSize: Int) -> Int {
        (microBatch * worldSize + rank) * perDeviceBatchSize
    }

    /// Cuts one global batch into this rank's micro-batches: micro-batch a of rank r holds items
    /// [(a·W + r)·B, (a·W + r + 1)·B). Every rank gets the same number of micro-batches, so all
    /// take part in every collective even when the data runs short.
    public static func shard<C: Collection>(_ globalBatch: C, rank: Int, worldSize: Int, perDeviceBatchSize: Int,
                                            gradientAccumulationSteps: Int) -> [[C.Element]] where C.Index == Int {
        (0..<gradientAccumulationSteps).map { micro in
            let begin = globalBatch.startIndex + firstExample(microBatch: micro, rank: rank, worldSize: worldSize, perDeviceBatchSize: perDeviceBatchSize)
            let end = min(begin + perDeviceBatchSize, globalBatch.endIndex)
            return begin < end ? Array(globalBatch[begin..<end]) : []
        }
    }
}

extension Dataset {
    /// Batches of consecutive examples for evaluation, in order; rank r of W takes every W-th one.
    public func evaluationBatches(batchSize: Int, rank: Int, worldSize: Int, collator: Collator) -> [Batch] {
        stride(from: rank * batchSize, to: count, by: worldSize * batchSize).compactMap { start in
            collator.batch(Array(self[start..<Swift.min(start + batchSize, count)]))
        }
    }
}
