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
        let plan = try #require(MemoryPlan(arguments: Self.arguments(), config: Self.config, trainLength: 100, evalLength: 120))
        let parameters = try #require(Self.config.parameterCount)
        #expect(plan.modelAndOptimizerBytes == 4 * 4 * parameters)
        // The larger of training's 8 x 100 and evaluation's 4 x 120 tokens sets the rows; the attention weights likewise.
        #expect(plan.activationBytes == 4 * Self.config.activationFloatCount(rows: 800, scores: 80_000, checkpointed: false)!)
        #expect(plan.decodingBytes == 0 && plan.batch == (8, 100))
        let sampling = try #require(MemoryPlan(arguments: Self.arguments(sampleSteps: 10), config: Self.config, trainLength: 100, evalLength: 0))
        #expect(sampling.decodingBytes == 4 * Self.config.decodingFloatCount(batchSize: 3, capacity: 128)!)
        let checkpointed = try #require(MemoryPlan(arguments: Self.arguments(checkpointing: true), config: Self.config, trainLength: 100, evalLength: 0))
        #expect(checkpointed.activationBytes < plan.activationBytes)
    }

    @Test func theRanksOnANodeComeFromTheLauncher() {
        #expect(MemoryPlan.ranksOnThisNode(environment: [:]) == 1)
        #expect(MemoryPlan.ranksOnThisNode(environment: ["OMPI_COMM_WORLD_LOCAL_SIZE": "4"]) == 4)
        #expect(MemoryPlan.ranksOnThisNode(environment: ["SLURM_NTASKS_PER_NODE": "2(x3)"]) == 2)
    }

    /// Short of memory, the error gives the figures, the share of each rank and what would fit.
    @Test func aRunThatDoesNotFitItsShareIsRefusedWithWhatWouldFit() throws {
        let plan = try #require(MemoryPlan(arguments: Self.arguments(), config: Self.config, trainLength: 128, evalLength: 0))
        try MemoryPlan.check(arguments: Self.arguments(), config: Self.config, trainLength: 128, evalLength: 0,
                             nodeBytes: 3 * plan.totalBytes, ranks: 2)
        let checkpointed = try #require(MemoryPlan(arguments: Self.arguments(checkpointing: true), config: Self.config, trainLength: 128, evalLength: 0))
        do {
            try MemoryPlan.check(arguments: Self.arguments(), config: Self.config, trainLength: 128, evalLength: 0,
                                 nodeBytes: 2 * checkpointed.totalBytes / 19 * 20 + 40, ranks: 2)
            Issue.record("expected a refusal")
        } catch let TrainingError.refused(message) {
            #expect(message.contains("each rank needs \(PhysicalMemory.format(plan.totalBytes))") && message.contains("shared by its 2 ranks"))
            #expect(message.contains("--gradient-checkpointing (\(PhysicalMemory.format(checkpointed.totalBytes)))"), "\(message)")
            #expect(message.contains("--per-device-train-batch-size 4"), "\(message)")
        }
        #expect(throws: TrainingError.self) {
            try MemoryPlan.check(arguments: Self.arguments(), config: Self.config, trainLength: 128, evalLength: 0, nodeBytes: 1 << 20, ranks: 1)
        }
    }
}
