import GPT2
import Testing
import Training

/// The memory check that counts the ranks sharing a node.
struct MemoryPlanTests {
    static let config = GPT2Config(vocabSize: 1000, nPositions: 128, nEmbd: 64, nLayer: 4, nHead: 4)

    static func arguments(batch: Int = 8, checkpointing: Bool = false, sampleSteps: Int = 0) -> TrainingArguments {
        var arguments = TrainingArguments(outputDir: "/tmp/unused", trainFile: "/tmp/unused")
        arguments.perDeviceTrainBatchSize = batch
        arguments.perDeviceEvalBatchSize = 4
        arguments.gradientCheckpointing = checkpointing
        arguments.sampleSteps = sampleSteps
        return arguments
    }

    @Test func thePlanCountsWhatTheRunAllocates() throws {
        let plan = try #require(MemoryPlan(arguments: Self.arguments(), config: Self.config, trainLength: 100, evalLength: 120, worldSize: 1))
        let parameters = try #require(Self.config.parameterCount)
        #expect(plan.modelAndOptimizerBytes == 4 * 4 * parameters)
        // The larger of training's 8 x 100 and evaluation's 4 x 120 tokens sets the rows; the attention weights likewise.
        #expect(plan.activationBytes == 4 * Self.config.activationFloatCount(rows: 800, scores: 80_000, checkpointed: false)!)
        #expect(plan.decodingBytes == 0 && plan.batch == (8, 100))
        let sampling = try #require(MemoryPlan(arguments: Self.arguments(sampleSteps: 10), config: Self.config, trainLength: 100, evalLength: 0, worldSize: 1))
        #expect(sampling.decodingBytes == 4 * Self.config.decodingFloatCount(batchSize: 3, capacity: 128)!)
        let checkpointed = try #require(MemoryPlan(arguments: Self.arguments(checkpointing: true), config: Self.config, trainLength: 100, evalLength: 0, worldSize: 1))
        #expect(checkpointed.activationBytes < plan.activationBytes)
        // ZeRO-1: each of 4 ranks holds a quarter of the moments (its shard; the last is the largest);
        // on one rank there is nothing to share.
        var zero = Self.arguments()
        zero.zeroStage = 1
        let sharded = try #require(MemoryPlan(arguments: zero, config: Self.config, trainLength: 100, evalLength: 120, worldSize: 4))
        let largestShard = ParameterShards(count: parameters, ranks: 4).ranges.map(\.count).max()!
        #expect(sharded.momentBytes == 2 * 4 * largestShard && largestShard < parameters / 4 + 64)
        #expect(sharded.activationBytes == plan.activationBytes)
        #expect(try #require(MemoryPlan(arguments: zero, config: Self.config, trainLength: 100, evalLength: 120, worldSize: 1)).momentBytes == 2 * 4 * parameters)
    }

    @Test func shardsAreContiguousAlignedAndCoverTheBuffer() {
        for (count, ranks) in [(1000, 1), (1000, 2), (1003, 3), (124_439_808, 4), (10, 4), (0, 2)] {
            let shards = ParameterShards(count: count, ranks: ranks)
            #expect(shards.ranges.count == ranks && shards.ranges.first?.lowerBound == 0 && shards.ranges.last?.upperBound == count)
            #expect(zip(shards.ranges, shards.ranges.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
            #expect(shards.ranges.allSatisfy { $0.lowerBound % 16 == 0 || $0.isEmpty })
            #expect(shards.ranges.map(\.count).max()! - shards.ranges.map(\.count).min()! <= 16 * ranks)
            // A bucket's parts: how much of it each rank owns.
            let bucket = count / 3..<count / 2
            #expect(shards.counts(in: bucket).reduce(0, +) == bucket.count)
        }
    }

    @Test func theRanksOnANodeComeFromTheLauncher() {
        #expect(MemoryPlan.ranksOnThisNode(environment: [:]) == 1)
        #expect(MemoryPlan.ranksOnThisNode(environment: ["OMPI_COMM_WORLD_LOCAL_SIZE": "4"]) == 4)
        #expect(MemoryPlan.ranksOnThisNode(environment: ["SLURM_NTASKS_PER_NODE": "2(x3)"]) == 2)
    }

    /// Short of memory, the error gives the figures, the share of each rank and what would fit.
    @Test func aRunThatDoesNotFitItsShareIsRefusedWithWhatWouldFit() throws {
        let plan = try #require(MemoryPlan(arguments: Self.arguments(), config: Self.config, trainLength: 128, evalLength: 0, worldSize: 2))
        try MemoryPlan.check(arguments: Self.arguments(), config: Self.config, trainLength: 128, evalLength: 0, worldSize: 2,
                             nodeBytes: 3 * plan.totalBytes, ranks: 2)
        let checkpointed = try #require(MemoryPlan(arguments: Self.arguments(checkpointing: true), config: Self.config, trainLength: 128, evalLength: 0, worldSize: 2))
        do {
            try MemoryPlan.check(arguments: Self.arguments(), config: Self.config, trainLength: 128, evalLength: 0, worldSize: 2,
                                 nodeBytes: 2 * checkpointed.totalBytes / 19 * 20 + 40, ranks: 2)
            Issue.record("expected a refusal")
        } catch let TrainingError.refused(message) {
            #expect(message.contains("each rank needs \(PhysicalMemory.format(plan.totalBytes))") && message.contains("shared by its 2 ranks"))
            #expect(message.contains("--gradient-checkpointing (\(PhysicalMemory.format(checkpointed.totalBytes)))"), "\(message)")
            #expect(message.contains("--per-device-train-batch-size 4"), "\(message)")
            #expect(!message.contains("--zero-stage"), "sharding the moments does not save enough here: \(message)")
        }
        // Where the moments are what does not fit, sharding them is the remedy named.
        let weights = try #require(MemoryPlan(arguments: Self.arguments(), config: Self.config, trainLength: 128, evalLength: 0, worldSize: 2))
        var zero = Self.arguments()
        zero.zeroStage = 1
        let sharded = try #require(MemoryPlan(arguments: zero, config: Self.config, trainLength: 1, evalLength: 0, worldSize: 2))
        let node = 2 * (sharded.modelAndOptimizerBytes + weights.modelAndOptimizerBytes) / 2 / 19 * 20
        do {
            try MemoryPlan.check(arguments: Self.arguments(), config: Self.config, trainLength: 1, evalLength: 0, worldSize: 2, weightsOnly: true,
                                 nodeBytes: node, ranks: 2)
            Issue.record("expected a refusal")
        } catch let TrainingError.refused(message) {
            #expect(message.contains("--zero-stage 1 (\(PhysicalMemory.format(sharded.modelAndOptimizerBytes)))"), "\(message)")
        }
        try MemoryPlan.check(arguments: zero, config: Self.config, trainLength: 1, evalLength: 0, worldSize: 2, weightsOnly: true, nodeBytes: node, ranks: 2)
        #expect(throws: TrainingError.self) {
            try MemoryPlan.check(arguments: Self.arguments(), config: Self.config, trainLength: 128, evalLength: 0, worldSize: 1, nodeBytes: 1 << 20, ranks: 1)
        }
    }
}
