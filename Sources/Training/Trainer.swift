import Data
import Distributed
import Foundation
import GPT2
import Kernels
import SafeTensors

#if canImport(Glibc)
import Glibc
#endif

/// Where a run's messages go: whole log lines, and a progress line that a terminal redraws.
public struct TrainerOutput {
    public var log: (String) -> Void
    public var progress: (String) -> Void
    /// A few texts the model generates at a step (for --sample-steps); nil when there is no tokenizer.
    public var samples: ((GPT2Model, _ step: Int) throws -> [String])?
    public init(log: @escaping (String) -> Void, progress: @escaping (String) -> Void, samples: ((GPT2Model, Int) throws -> [String])? = nil) {
        self.log = log
        self.progress = progress
        self.samples = samples
    }
}

/// Validation loss over every predicted token of a data set, summed over all ranks.
public func evaluate(model: GPT2Model, dataset: Dataset, batchSize: Int, collator: Collator, communicator: Communicator) throws -> LossSum {
    var local = LossSum()
    for batch in dataset.evaluationBatches(batchSize: batchSize, rank: communicator.rank, worldSize: communicator.size, collator: collator) {
        let loss = try model.forward(batch)
        local.sum += loss.sum
        local.count += loss.count
    }
    let total = try communicator.sum([local.sum, Double(local.count)])
    return LossSum(sum: total[0], count: Int(total[1]))
}

/// The training loop of `Trainer.train()`: data-parallel over the communicator's ranks, with only
/// rank 0 writing files.
public final class Trainer {
    public let arguments: TrainingArguments
    public let model: GPT2Model
    public let optimizer: AdamW
    public let loader: DataLoader
    public let validation: Dataset?
    public let communicator: Communicator
    public let schedule: LearningRateSchedule
    public private(set) var state: TrainerState
    private let output: TrainerOutput
    private let extraFiles: (String) throws -> Void
    private let metrics: MetricsLog
    private let reducer: GradientReducer?
    /// Under ZeRO-1 with several ranks, each rank's part of the optimizer; nil when replicated.
    private let shards: ParameterShards?
    /// Where the gradient norm's partial sums are taken: the ranges ZeRO-1 would give the ranks.
    private let normRanges: [Range<Int>]
    /// Rank 0's resumed optimizer file while a sharded optimizer still has to take its moments from it.
    private var resumedOptimizerFile: SafeTensorsFile?
    /// Rank 0's locked output directory; nil on the other ranks, which write nothing.
    private let runDirectory: RunDirectory?
    /// Rank 0's TensorBoard event file, with --report-to tensorboard.
    private let tensorBoard: TensorBoardWriter?

    /// `extraFiles` writes what a checkpoint holds besides the model and optimiser (the generation
    /// config and the tokenizer).
    public init(arguments: TrainingArguments, model: GPT2Model, train: Dataset, validation: Dataset?, collator: Collator,
                communicator: Communicator, runDirectory: RunDirectory?, tokenizerFingerprint: String, output: TrainerOutput,
                extraFiles: @escaping (String) throws -> Void) throws {
        var arguments = arguments
        arguments.worldSize = communicator.size
        loader = DataLoader(dataset: train, perDeviceBatchSize: arguments.perDeviceTrainBatchSize,
                            gradientAccumulationSteps: arguments.gradientAccumulationSteps, worldSize: communicator.size,
                            seed: arguments.seed, collator: collator)
        arguments.totalSteps = arguments.totalSteps(stepsPerEpoch: loader.stepsPerEpoch)
        guard let warmup = LearningRateSchedule.warmupSteps(arguments.warmupSteps, totalSteps: arguments.totalSteps) else {
            throw TrainingError.invalidSetting("--warmup-steps expects a whole number of steps or a ratio below 1, got '\(arguments.warmupSteps)'")
        }
        arguments.resolvedWarmupSteps = warmup
        if validation == nil, let flag = arguments.flagNeedingEvaluation {
            throw TrainingError.invalidSetting("\(flag) needs validation data: give --validation-file or a --validation-split above 0")
        }
        self.arguments = arguments
        self.model = model
        self.validation = validation
        self.communicator = communicator
        self.output = output
        self.extraFiles = extraFiles
        self.runDirectory = runDirectory
        metrics = MetricsLog(directory: arguments.outputDir)
        tensorBoard = try runDirectory.flatMap { try TensorBoardWriter.start(for: arguments, in: $0, log: output.log) }
        schedule = LearningRateSchedule(kind: arguments.lrSchedulerType, peak: arguments.learningRate, warmupSteps: warmup,
                                        totalSteps: arguments.totalSteps, options: arguments.lrSchedulerKwargs)
        let partition = ParameterShards(count: model.layout.totalCount, ranks: communicator.size)
        let shards = arguments.zeroStage == 1 && communicator.size > 1 ? partition : nil
        self.shards = shards
        normRanges = partition.ranges
        optimizer = AdamW(layout: model.layout, settings: .init(beta1: arguments.adamBeta1, beta2: arguments.adamBeta2,
                                                                epsilon: arguments.adamEpsilon, weightDecay: arguments.weightDecay),
                          shard: shards?.ranges[communicator.rank])
        state = TrainerState()
        state.totalSteps = arguments.totalSteps
        state.globalBatchSize = loader.globalBatchSize
        state.worldSize = communicator.size
        state.seed = arguments.seed
        state.tokenizerFingerprint = tokenizerFingerprint
        reducer = communicator.size > 1
            ? GradientReducer(communicator: communicator, gradients: model.gradients, shards: shards,
                              bucketBytes: Int(arguments.allreduceBucketMB * 1_000_000))
            : nil
    }

    /// Makes every rank's replica rank 0's: the resolved config and tokenizer are compared, then
    /// parameters, optimiser moments and the trainer state are broadcast and the replicas'
    /// checksums compared. Called at the start, after rank 0 alone has resumed (if it did).
    public func synchronizeReplicas() throws {
        guard communicator.size > 1 else { return }
        let identity = try Data(model.config.jsonData()) + Data(state.tokenizerFingerprint.utf8)
        let mainIdentity = try communicator.broadcast(identity)
        let agreement = try communicator.allGather(mainIdentity == identity ? 1 : 0)
        if let rank = agreement.firstIndex(of: 0) { throw TrainingError.rankDisagrees(rank: rank, what: "model config or tokenizer") }
        try communicator.broadcast(model.parameters.buffer)
        var optimizerStep = UInt64(optimizer.stepCount)
        try withUnsafeMutableBytes(of: &optimizerStep) { try communicator.broadcast($0, root: 0) }
        optimizer.stepCount = Int(optimizerStep)
        if optimizer.holdsEveryMoment {
            try communicator.broadcast(optimizer.firstMoment.buffer)
            try communicator.broadcast(optimizer.secondMoment.buffer)
        } else if optimizerStep > 0 {
            // Rank 0 resumed: each moment goes out whole through the gradients (free until the
            // first step), and every rank keeps its shard of it.
            for (prefix, moment) in zip(Checkpoint.momentPrefixes, optimizer.moments) {
                if let file = resumedOptimizerFile { try model.readWeights(from: file, namePrefix: prefix, into: model.gradients) }
                try communicator.broadcast(model.gradients.buffer)
                moment.pointer.update(from: model.gradients.pointer + optimizer.shard.lowerBound, count: moment.count)
            }
            resumedOptimizerFile = nil
        }
        state = try JSONDecoder().decode(TrainerState.self, from: communicator.broadcast(try JSONEncoder().encode(state)))
        try verifyReplicas()
    }

    /// Stops the run if any rank's parameters differ from rank 0's by a single bit.
    public func verifyReplicas() throws {
        let checksums = try communicator.allGather(model.parameters.checksum())
        let diverged = checksums.indices.filter { checksums[$0] != checksums[0] }
        guard diverged.isEmpty else { throw TrainingError.replicasDiverged(step: state.globalStep, ranks: diverged) }
    }

    /// Continues from a checkpoint: weights, moments, step, log windows. The data order follows
    /// from the seed and the global batch size, so with the same global batch nothing changes.
    public func resume(from path: String) throws {
        let (saved, savedArguments) = try Checkpoint.readState(path)
        guard saved.tokenizerFingerprint == state.tokenizerFingerprint else {
            throw TrainingError.cannotResume(path: path, problem: "its tokenizer differs from this run's")
        }
        // The data order follows from the example count, so a checkpoint past this run's end cannot continue it.
        guard saved.globalStep <= arguments.totalSteps else {
            throw TrainingError.cannotResume(path: URL(fileURLWithPath: path).appendingPathComponent(Checkpoint.stateFileName).path,
                                             problem: "global_step \(saved.globalStep) is past this run's last step \(arguments.totalSteps); raise --max-steps or --num-train-epochs to train further")
        }
        let optimizerFile = try Checkpoint.restore(from: path, model: model, optimizer: optimizer)
        if !optimizer.holdsEveryMoment { resumedOptimizerFile = optimizerFile }
        guard optimizer.stepCount == saved.globalStep else {
            throw TrainingError.cannotResume(path: URL(fileURLWithPath: path).appendingPathComponent(Checkpoint.optimizerFileName).path,
                                             problem: "its step \(optimizer.stepCount) is not the trainer state's global_step \(saved.globalStep)")
        }
        var changes: [String] = []
        if saved.worldSize != communicator.size { changes.append("ranks \(saved.worldSize) -> \(communicator.size)") }
        if saved.globalBatchSize != loader.globalBatchSize {
            changes.append("global batch \(saved.globalBatchSize) -> \(loader.globalBatchSize) (the data order changes from here)")
        }
        changes += try arguments.changedSettings(since: savedArguments)
        let fingerprint = state.tokenizerFingerprint
        state = saved
        state.tokenizerFingerprint = fingerprint
        state.totalSteps = arguments.totalSteps
        state.globalBatchSize = loader.globalBatchSize
        state.worldSize = communicator.size
        try tensorBoard?.resume(after: state.globalStep)
        output.log("resumed from \(path) at step \(state.globalStep)" + (changes.isEmpty ? "" : "; changed: " + changes.joined(separator: ", ")))
    }

    /// Trains to the last step, evaluating, logging and saving on the way; returns the mean loss.
    @discardableResult
    public func train() throws -> Double {
        let startStep = state.globalStep
        let start = Date()
        var tokensSinceLog = 0.0
        var trainingSecondsSinceLog = 0.0
        logStart()
        if arguments.evalOnStart && state.globalStep == 0 { try runEvaluation() }
        while state.globalStep < arguments.totalSteps && !state.trainingStopped {
            let step = state.globalStep
            let stepStart = Date()
            let learningRate = schedule.learningRate(at: step)
            let microBatches = loader.microBatches(step: step, rank: communicator.rank)
            let localTargets = microBatches.reduce(0) { $0 + ($1?.targetCount ?? 0) }
            let localTokens = microBatches.reduce(0) { $0 + ($1?.realTokenCount ?? 0) }
            let counts = try communicator.sum([Double(localTargets), Double(localTokens)])
            guard counts[0] > 0 else { throw TrainingError.noTargets(step: step) }

            model.zeroGradients()
            var localLoss = 0.0
            for (index, batch) in microBatches.enumerated() {
                // The last micro-batch's backward starts the gradient allreduce bucket by bucket.
                let overlapping = arguments.overlapAllreduce && index == microBatches.count - 1 ? reducer : nil
                guard let batch else {
                    for range in model.layout.gradientReadyRanges { overlapping?.ready(range) }
                    continue
                }
                // Dropout masks keyed by where each example is in the global batch, so that they do
                // not depend on the rank count or the accumulation split.
                let dropout = DropoutKey(seed: arguments.seed, step: step,
                                         firstExample: loader.firstExample(microBatch: index, rank: communicator.rank))
                localLoss += try model.forward(batch, dropout: dropout).sum
                // Buckets go to the communication thread; its errors surface in `finish()`.
                model.backward(lossScale: Float(1 / counts[0]), gradientsReady: overlapping.map { reducer in { reducer.ready($0) } })
            }
            if arguments.overlapAllreduce { try reducer?.finish() } else { try reducer?.reduceAll() }
            let loss = try communicator.sum([localLoss])[0] / counts[0]
            let gradientNorm = try self.gradientNorm()
            // Stopped before the update, so that the weights and the last checkpoint stay as they were.
            guard loss.isFinite && gradientNorm.isFinite else {
                let what = loss.isFinite ? "the gradient norm is \(gradientNorm)" : "loss is \(loss.isNaN ? "NaN" : "\(loss)")"
                throw TrainingError.notFinite("\(what) at step \(step + 1) (learning rate \(learningRate)); the last checkpoint is intact: lower --learning-rate or --max-grad-norm and resume from it")
            }
            optimizer.update(parameters: model.parameters, gradients: model.gradients, learningRate: learningRate,
                             gradientScale: clippingScale(norm: gradientNorm, maxNorm: arguments.maxGradNorm))
            try reducer?.gatherShards(of: model.parameters)

            state.globalStep += 1
            state.epoch = Double(state.globalStep) / Double(loader.stepsPerEpoch)
            state.windowLossSum += loss
            state.windowSteps += 1
            state.trainLossSum += loss
            tokensSinceLog += counts[1]
            trainingSecondsSinceLog += Date().timeIntervalSince(stepStart)
            let elapsed = Date().timeIntervalSince(start)
            let remaining = elapsed / Double(state.globalStep - startStep) * Double(arguments.totalSteps - state.globalStep)
            output.progress(String(format: "step %d/%d epoch %.2f loss %.4f lr %.3e grad_norm %.3f eta %@", state.globalStep,
                                   arguments.totalSteps, state.epoch, loss, learningRate, gradientNorm, duration(remaining)))
            if state.globalStep % arguments.loggingSteps == 0 || state.globalStep == arguments.totalSteps {
                let tokensPerSecond = tokensSinceLog / max(trainingSecondsSinceLog, 1e-9)
                try record(["step": .number(Double(state.globalStep)), "epoch": .number(state.epoch),
                            "loss": .float(state.windowLossSum / Double(state.windowSteps)), "learning_rate": .number(learningRate),
                            "grad_norm": .float(gradientNorm), "tokens_per_second": .number(tokensPerSecond.rounded())])
                state.windowLossSum = 0
                state.windowSteps = 0
                tokensSinceLog = 0
                trainingSecondsSinceLog = 0
            }
            let epochEnded = state.globalStep % loader.stepsPerEpoch == 0
            let evaluateNow = switch arguments.evalStrategy {
            case .no: false
            case .steps: state.globalStep % (arguments.evalSteps ?? arguments.loggingSteps) == 0
            case .epoch: epochEnded
            }
            let improved = evaluateNow && state.globalStep < arguments.totalSteps ? try runEvaluation() : false
            if state.trainingStopped {
                let patience = arguments.earlyStoppingPatience ?? 0
                output.log("early stopping at step \(state.globalStep): \(patience) evaluation(s) without an improvement of more than \(arguments.earlyStoppingThreshold)")
                try record(["step": .number(Double(state.globalStep)), "epoch": .number(state.epoch), "early_stopping": .bool(true),
                            "early_stopping_patience": .number(Double(patience))])
            }
            let saveNow = switch arguments.saveStrategy {
            case .no: false
            case .steps: state.globalStep % arguments.saveSteps == 0
            case .epoch: epochEnded
            case .best: improved
            }
            // The last step's checkpoint is written after the loop.
            if saveNow && state.globalStep < arguments.totalSteps && !state.trainingStopped { try saveCheckpoint() }
            if arguments.replicaCheckSteps > 0 && state.globalStep % arguments.replicaCheckSteps == 0 { try verifyReplicas() }
            if arguments.sampleSteps > 0 && state.globalStep % arguments.sampleSteps == 0, communicator.isMain, let samples = output.samples {
                let texts = try samples(model, state.globalStep)
                for text in texts { output.log("sample: \(text)") }
                try metrics.append(["step": .number(Double(state.globalStep)), "samples": .array(texts.map { .string($0) })])
            }
        }
        try verifyReplicas()
        // A run resumed from its own final checkpoint has evaluated at this step already.
        let evaluatedNow = state.logHistory.contains { $0["eval_loss"] != nil && $0["step"]?.doubleValue == Double(state.globalStep) }
        if arguments.evalStrategy != .no && validation != nil && !evaluatedNow { try runEvaluation() }
        if arguments.saveStrategy != .no { try saveCheckpoint() }
        if arguments.loadBestModelAtEnd { try loadBestModel() }
        let trainLoss = state.trainLossSum / Double(max(state.globalStep, 1))
        var summary: MetricsRecord = ["step": .number(Double(state.globalStep)), "epoch": .number(state.epoch), "train_loss": .float(trainLoss),
                                      "train_runtime": .number((Date().timeIntervalSince(start) * 1000).rounded() / 1000)]
        if let reducer { summary["allreduce_wait_seconds"] = .number((reducer.waitSeconds * 1000).rounded() / 1000) }
        try record(summary)
        try saveFinalModel()
        try communicator.barrier()
        output.log("saved the final model to \(arguments.outputDir)")
        return trainLoss
    }

    /// The gradients' global L2 norm, from the sums of squares over the shards' ranges added in
    /// rank order: each rank's own under ZeRO-1 (where alone its summed gradient is), all of them
    /// here when replicated, so that both give the same bits and so the same clipping.
    private func gradientNorm() throws -> Double {
        let gradients = model.gradients
        let squares = { (range: Range<Int>) in Kernels.sumOfSquares(gradients.pointer + range.lowerBound, count: range.count) }
        guard let shards else { return normRanges.map(squares).reduce(0, +).squareRoot() }
        let mine = squares(shards.ranges[communicator.rank])
        return try communicator.allGather(mine.bitPattern).map(Double.init(bitPattern:)).reduce(0, +).squareRoot()
    }

    private func logStart() {
        guard communicator.isMain else { return }  // only rank 0 logs
        let examples = loader.dataset.count
        // What padding costs: the share of the first epoch's batch tokens that are padding.
        let (padding, total) = loader.firstEpochPadding()
        output.log(String(format: "padding: %.1f%% of the tokens in an epoch's batches are padding (%d of %d)%@",
                          100 * Double(padding) / Double(max(total, 1)), padding, total,
                          arguments.packing ? "; packing into full blocks drops only the last partial block" : "; --packing would avoid it"))
        output.log("training \(examples) examples (\(loader.dataset.tokenCount) tokens) for \(arguments.totalSteps) steps: "
            + "\(loader.stepsPerEpoch) steps per epoch, global batch \(loader.globalBatchSize) = \(communicator.size) rank(s) x "
            + "\(arguments.perDeviceTrainBatchSize) x \(arguments.gradientAccumulationSteps) accumulation, warmup \(arguments.resolvedWarmupSteps)")
    }

    /// Evaluates on the validation set, records it and follows the best metric; returns whether
    /// this evaluation is the best so far.
    @discardableResult
    public func runEvaluation() throws -> Bool {
        guard let validation else { return false }
        let loss = try evaluate(model: model, dataset: validation, batchSize: arguments.perDeviceEvalBatchSize,
                                collator: loader.collator, communicator: communicator)
        try record(["step": .number(Double(state.globalStep)), "epoch": .number(state.epoch), "eval_loss": .float(loss.mean),
                    "eval_perplexity": .float(exp(loss.mean)), "eval_tokens": .number(Double(loss.count))])
        guard loss.mean.isFinite else {
            throw TrainingError.notFinite("eval_loss is \(loss.mean.isNaN ? "NaN" : "\(loss.mean)") at step \(state.globalStep) (learning rate \(schedule.learningRate(at: state.globalStep - 1))); the last checkpoint is intact: lower --learning-rate and resume from it")
        }
        let value = arguments.bestModelMetric == .perplexity ? exp(loss.mean) : loss.mean
        let improved = state.bestMetric.map { arguments.greaterIsBetter == true ? value > $0 : value < $0 } ?? true
        // EarlyStoppingCallback: only an improvement larger than the threshold resets the count.
        if let patience = arguments.earlyStoppingPatience {
            let counts = state.bestMetric.map { improved && abs(value - $0) > arguments.earlyStoppingThreshold } ?? true
            state.earlyStoppingPatienceCounter = counts ? 0 : state.earlyStoppingPatienceCounter + 1
            if state.earlyStoppingPatienceCounter >= patience { state.trainingStopped = true }
        }
        if improved { (state.bestMetric, state.bestGlobalStep) = (value, state.globalStep) }
        return improved
    }

    /// The final model becomes the best checkpoint's (`--load-best-model-at-end`); rank 0 alone
    /// saves it, so rank 0 alone loads it.
    private func loadBestModel() throws {
        guard communicator.isMain else { return }
        guard let best = state.bestModelCheckpoint, let step = state.bestGlobalStep, let metric = state.bestMetric else {
            output.log("--load-best-model-at-end: no checkpoint holds the best evaluation; the final model is the last step's")
            return
        }
        guard step != state.globalStep else { return }  // the last step's weights are the best
        try Checkpoint.restoreWeights(from: best, model: model)
        output.log("loaded the best model from \(best) (eval_\(arguments.bestModelMetric.rawValue) \(Float(metric)) at step \(step)) to save as the final model")
    }

    /// Rank 0 logs and appends to metrics.jsonl (and redraws loss.svg after an evaluation).
    private func record(_ record: MetricsRecord) throws {
        state.logHistory.append(record)
        guard communicator.isMain else { return }
        try metrics.append(record)
        try tensorBoard?.append(record, step: state.globalStep)
        let text = record.sorted { $0.key < $1.key }.map { key, value in
            switch value {
            case let .bool(flag): return "\(key)=\(flag)"
            case let .string(text): return "\(key)=\(text)"
            default: break
            }
            guard let number = value.doubleValue else { return "\(key)=\(value)" }
            return "\(key)=\(number == number.rounded() && abs(number) < 1e15 ? String(Int(number)) : String(Float(number).description))"
        }
        output.log(text.joined(separator: " "))
        if record["eval_loss"] != nil {
            try AtomicFile.write(Data(LossChart.svg(state.logHistory, title: URL(fileURLWithPath: arguments.outputDir).lastPathComponent).utf8), to: URL(fileURLWithPath: arguments.outputDir).appendingPathComponent(LossChart.fileName).path)
        }
    }

    /// Rank 0 saves the model and tokenizer in Hugging Face's layout: into a temporary folder
    /// first, then each file is claimed in the manifest and renamed into the output directory.
    private func saveFinalModel() throws {
        guard let runDirectory else { return }
        let staging = URL(fileURLWithPath: arguments.outputDir).appendingPathComponent(".final-model.tmp-\(getpid())").path
        try model.save(directory: staging)
        try extraFiles(staging)
        let names = try FileManager.default.contentsOfDirectory(atPath: staging).sorted()
        let targets = names.map { URL(fileURLWithPath: arguments.outputDir).appendingPathComponent($0).path }
        if let taken = zip(names, targets).first(where: { !runDirectory.owned.contains($0.0) && FileManager.default.fileExists(atPath: $0.1) }) {
            throw TrainingError.refused("\(taken.1): appeared during the run and is not gpt2-ddp's; the final model is in \(Checkpoint.directory(in: arguments.outputDir, step: state.globalStep))")
        }
        try runDirectory.claim(names)
        for (name, target) in zip(names, targets) {
            guard rename(URL(fileURLWithPath: staging).appendingPathComponent(name).path, target) == 0 else {
                throw TrainingError.io(path: target, problem: "cannot be written: \(String(cString: strerror(errno)))")
            }
        }
        try? FileManager.default.removeItem(atPath: staging)
    }

    private func saveCheckpoint() throws {
        let path = Checkpoint.directory(in: arguments.outputDir, step: state.globalStep)
        if state.bestGlobalStep == state.globalStep { state.bestModelCheckpoint = path }
        // A sharded optimizer's moments are gathered whole, one at a time, into the gradients (free
        // after the step), on every rank as rank 0 writes them.
        let gatherMoment = { [self] (index: Int) in
            let moment = optimizer.moments[index]
            (model.gradients.pointer + optimizer.shard.lowerBound).update(from: moment.pointer, count: moment.count)
            try reducer?.gatherShards(of: model.gradients)
        }
        let moments = optimizer.holdsEveryMoment ? nil : Checkpoint.Moments(buffers: optimizer.moments.map { _ in model.gradients }, fill: gatherMoment)
        if communicator.isMain {
            try Checkpoint.write(to: path, model: model, optimizer: optimizer, moments: moments, state: state, arguments: arguments, extraFiles: extraFiles)
            if let limit = arguments.saveTotalLimit { try Checkpoint.prune(in: arguments.outputDir, keep: limit, best: state.bestModelCheckpoint) }
            output.log("saved \(path)")
        } else if moments != nil {
            for index in optimizer.moments.indices { try gatherMoment(index) }
        }
        try communicator.barrier()
    }

    private func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let total = Int(seconds.rounded())
        return total >= 3600 ? String(format: "%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60) : String(format: "%d:%02d", total / 60, total % 60)
    }
}
