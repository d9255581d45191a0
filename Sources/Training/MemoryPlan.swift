import Foundation
import GPT2

/// What one rank of a training run will hold, computed before it is allocated: the parameters,
/// their gradients, AdamW's two moments, the activations of the largest batch the run can make
/// (training or evaluation), and the decoding caches and weights when it samples. It is checked
/// against the rank's share of the node's memory, so that ranks that share a node do not each
/// count the whole of it.
public struct MemoryPlan: Sendable {
    public var parameterBytes: Int
    /// This rank's AdamW moments: both whole, or under ZeRO-1 both of its shard.
    public var momentBytes: Int
    public var activationBytes: Int
    public var decodingBytes: Int
    /// Rows and sequence length of the largest batch, for the message.
    public var batch: (examples: Int, tokens: Int)

    /// Parameters, gradients and the moments.
    public var modelAndOptimizerBytes: Int { 2 * parameterBytes + momentBytes }
    public var totalBytes: Int { modelAndOptimizerBytes + activationBytes + decodingBytes }

    /// The plan for `arguments` on `config`, with training examples of at most `trainLength`
    /// tokens and evaluation ones of at most `evalLength` (0: no evaluation), on one of
    /// `worldSize` ranks; nil when a count does not fit an Int.
    public init?(arguments: TrainingArguments, config: GPT2Config, trainLength: Int, evalLength: Int, worldSize: Int,
                 gradientCheckpointing: Bool? = nil, zeroStage: Int? = nil, trainBatchSize: Int? = nil) {
        let float = MemoryLayout<Float>.stride
        let trainBatch = trainBatchSize ?? arguments.perDeviceTrainBatchSize
        let shapes = [(trainBatch, trainLength), (evalLength > 0 ? arguments.perDeviceEvalBatchSize : 0, evalLength)]
        let rows = shapes.map { $0.0 * $0.1 }.max()!, scores = shapes.map { $0.0 * $0.1 * $0.1 }.max()!
        let checkpointed = gradientCheckpointing ?? arguments.gradientCheckpointing
        let decoding = arguments.sampleSteps > 0 ? config.decodingFloatCount(batchSize: 3, capacity: config.nPositions) : 0
        // Each term at most a sixteenth of Int.max, so that the total cannot overflow either.
        let limit = Int.max / 16 / float
        guard let parameters = config.parameterCount, let decoding,
              let activations = config.activationFloatCount(rows: rows, scores: scores, checkpointed: checkpointed),
              parameters <= limit, activations <= limit, decoding <= limit else { return nil }
        parameterBytes = parameters * float
        // Under ZeRO-1 the largest shard's.
        let sharded = (zeroStage ?? arguments.zeroStage) == 1 && worldSize > 1
        momentBytes = 2 * (sharded ? ParameterShards(count: parameters, ranks: worldSize).ranges.map(\.count).max()! : parameters) * float
        activationBytes = activations * float
        decodingBytes = decoding * float
        batch = shapes[0].0 * shapes[0].1 >= shapes[1].0 * shapes[1].1 ? shapes[0] : shapes[1]
    }

    /// The ranks of this job on this node: Open MPI's, Slurm's, or MPICH/PMI's count; 1 without a launcher.
    public static func ranksOnThisNode(environment: [String: String] = ProcessInfo.processInfo.environment) -> Int {
        for name in ["OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE", "MPI_LOCALNRANKS", "PMI_LOCAL_SIZE"] {
            if let text = environment[name], let count = Int(text.prefix { $0.isNumber }), count > 0 { return count }
        }
        return 1
    }

    /// Throws, with the figures and what would fit, unless the run fits 95% of its share of the node.
    /// `weightsOnly` checks the four copies of the parameters alone, before the data is read.
    public static func check(arguments: TrainingArguments, config: GPT2Config, trainLength: Int, evalLength: Int, worldSize: Int,
                             weightsOnly: Bool = false, nodeBytes: Int = PhysicalMemory.bytes, ranks: Int = ranksOnThisNode()) throws {
        // A twentieth is left for the rest of the process: the runtime, tokenizer, data and scratch.
        let share = nodeBytes / max(1, ranks) / 20 * 19
        func plan(checkpointing: Bool? = nil, zeroStage: Int? = nil, batch: Int? = nil) -> MemoryPlan? {
            var plan = MemoryPlan(arguments: arguments, config: config, trainLength: trainLength, evalLength: evalLength, worldSize: worldSize,
                                  gradientCheckpointing: checkpointing, zeroStage: zeroStage, trainBatchSize: batch)
            if weightsOnly {
                plan?.activationBytes = 0
                plan?.decodingBytes = 0
            }
            return plan
        }
        let fits = { (plan: MemoryPlan?) in plan.map { $0.totalBytes <= share } ?? false }
        let planned = plan()
        if fits(planned) { return }
        let gib = { (bytes: Int) in PhysicalMemory.format(bytes) }
        var needs = "more than a 64-bit count holds"
        if let plan = planned, weightsOnly {
            needs = "at least \(gib(plan.totalBytes)) for the parameters, their gradients and AdamW's moments alone"
        } else if let plan = planned {
            needs = "\(gib(plan.totalBytes)) (parameters, gradients and AdamW moments \(gib(plan.modelAndOptimizerBytes)), activations "
                + "\(gib(plan.activationBytes)) for \(plan.batch.examples) x \(plan.batch.tokens) tokens"
                + (plan.decodingBytes > 0 ? ", sampling \(gib(plan.decodingBytes))" : "") + ")"
        }
        var remedies: [String] = []
        // Sharding needs other ranks to share the moments with.
        if worldSize > 1, arguments.zeroStage == 0, let sharded = plan(zeroStage: 1), fits(sharded) {
            remedies.append("--zero-stage 1 (\(gib(sharded.totalBytes)))")
        }
        if !weightsOnly, !arguments.gradientCheckpointing, let checkpointed = plan(checkpointing: true), fits(checkpointed) {
            remedies.append("--gradient-checkpointing (\(gib(checkpointed.totalBytes)))")
        }
        if !weightsOnly, worldSize > 1, arguments.zeroStage == 0, !arguments.gradientCheckpointing,
           remedies.isEmpty, let both = plan(checkpointing: true, zeroStage: 1), fits(both) {
            remedies.append("--zero-stage 1 with --gradient-checkpointing (\(gib(both.totalBytes)))")
        }
        var batch = weightsOnly ? 0 : arguments.perDeviceTrainBatchSize / 2
        while batch >= 1 {
            if let smaller = plan(batch: batch), fits(smaller) {
                remedies.append("--per-device-train-batch-size \(batch) (\(gib(smaller.totalBytes)); raise --gradient-accumulation-steps to keep the global batch)")
                break
            }
            batch /= 2
        }
        let node = ranks > 1 ? "this node's \(gib(nodeBytes)) shared by its \(ranks) ranks leaves \(gib(share)) to each (95% of its share)"
                             : "this machine has \(gib(nodeBytes)), of which \(gib(share)) is for the run (95%)"
        throw TrainingError.refused("each rank needs \(needs); \(node)"
            + (remedies.isEmpty ? "; no smaller batch fits: use a smaller model or fewer ranks on this node" : "; it would fit with " + remedies.joined(separator: " or ")))
    }
}
