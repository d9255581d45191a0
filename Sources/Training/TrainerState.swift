import Foundation
import GPT2

/// Where a run is: enough, with the weights and optimiser moments, to continue exactly. A
/// checkpoint holds it as two files: `trainer_state.json` in `Trainer`'s layout, which tools that
/// read a Trainer checkpoint read, and `gpt2_ddp_state.json` with what only this program needs.
public struct TrainerState: Codable, Sendable, Equatable {
    public var globalStep = 0
    public var epoch = 0.0
    public var totalSteps = 0
    /// The value of `--metric-for-best-model` at its best evaluation, and that evaluation's step.
    public var bestMetric: Double?
    public var bestGlobalStep: Int?
    /// The checkpoint of the best evaluation's step, once one is written.
    public var bestModelCheckpoint: String?
    /// Evaluations since the last improvement (EarlyStoppingCallback's counter).
    public var earlyStoppingPatienceCounter = 0
    /// Set when early stopping ended the run: a resume from its last checkpoint trains no further.
    public var trainingStopped = false
    public var logHistory: [MetricsRecord] = []
    /// The data order is a function of the seed and the global batch size; a resume with another
    /// global batch size continues from the same example count instead of the same step.
    public var globalBatchSize = 0
    public var worldSize = 1
    public var seed: UInt64 = 0
    /// Losses of the steps since the last log line, so a resumed run logs the same windows.
    public var windowLossSum = 0.0
    public var windowSteps = 0
    public var trainLossSum = 0.0
    public var tokenizerFingerprint = ""

    public init() {}

    init(_ trainer: TrainerStateFile, _ run: RunStateFile) {
        (globalStep, epoch, totalSteps, logHistory) = (trainer.globalStep, trainer.epoch, trainer.maxSteps, trainer.logHistory)
        (bestMetric, bestGlobalStep, bestModelCheckpoint) = (trainer.bestMetric, trainer.bestGlobalStep, trainer.bestModelCheckpoint)
        earlyStoppingPatienceCounter = trainer.statefulCallbacks?.earlyStopping?.attributes.earlyStoppingPatienceCounter ?? 0
        trainingStopped = trainer.statefulCallbacks?.trainerControl?.args.shouldTrainingStop ?? false
        (globalBatchSize, worldSize, seed, tokenizerFingerprint) = (run.globalBatchSize, run.worldSize, run.seed, run.tokenizerFingerprint)
        (windowLossSum, windowSteps, trainLossSum) = (run.windowLossSum, run.windowSteps, run.trainLossSum)
    }

    /// The fields of `trainer_state.json`; the others are in `gpt2_ddp_state.json`.
    static let trainerFields: Set<String> = ["global_step", "epoch", "max_steps", "best_metric", "best_global_step", "early_stopping_patience_counter"]

    /// The first field that no run could have written, named as in its file, with what is wrong.
    func invalidField() -> (String, String)? {
        let finite: [(String, Double?)] = [("epoch", epoch), ("best_metric", bestMetric), ("window_loss_sum", windowLossSum), ("train_loss_sum", trainLossSum)]
        if let (name, value) = finite.first(where: { $0.1.map { !$0.isFinite } ?? false }) { return (name, "is \(value!), not a finite number") }
        let counts: [(String, Int, ClosedRange<Int>)] = [
            ("global_step", globalStep, 0...Int.max), ("max_steps", totalSteps, 1...Int.max), ("best_global_step", bestGlobalStep ?? 0, 0...max(globalStep, 0)),
            ("early_stopping_patience_counter", earlyStoppingPatienceCounter, 0...Int.max),
            ("global_batch_size", globalBatchSize, 1...Int.max), ("world_size", worldSize, 1...Int.max), ("window_steps", windowSteps, 0...max(globalStep, 0)),
        ]
        if let (name, value, range) = counts.first(where: { !$0.2.contains($0.1) }) {
            return (name, "is \(value); it must be " + (range.upperBound == Int.max ? "\(range.lowerBound) or more" : "between \(range.lowerBound) and \(range.upperBound)"))
        }
        if epoch < 0 { return ("epoch", "is \(epoch), below 0") }
        return nil
    }
}

/// `trainer_state.json` as `transformers.TrainerState.save_to_json` writes it (and
/// `TrainerState.load_from_json` reads it): every field of its, none of this program's.
struct TrainerStateFile: Codable {
    var bestGlobalStep: Int?
    var bestMetric: Double?
    var bestModelCheckpoint: String?
    var epoch: Double
    var evalSteps: Int?
    var globalStep: Int
    var isHyperParamSearch = false
    var isLocalProcessZero = true
    var isWorldProcessZero = true
    var logHistory: [MetricsRecord]
    var loggingSteps: Int?
    var maxSteps: Int
    var numInputTokensSeen = 0
    var numTrainEpochs: Int?
    var saveSteps: Int?
    var statefulCallbacks: StatefulCallbacks?
    var totalFlos = 0.0
    var trainBatchSize: Int?
    var trialName: String?
    var trialParams: [String: JSONValue]?

    /// What `Trainer` keeps of its callbacks between a checkpoint and a resume.
    struct StatefulCallbacks: Codable {
        struct Control: Codable {
            struct Args: Codable {
                var shouldEpochStop = false
                var shouldEvaluate = false
                var shouldLog = false
                var shouldSave = true
                var shouldTrainingStop: Bool
                enum CodingKeys: String, CodingKey {
                    case shouldEpochStop = "should_epoch_stop", shouldEvaluate = "should_evaluate", shouldLog = "should_log"
                    case shouldSave = "should_save", shouldTrainingStop = "should_training_stop"
                }
            }
            var args: Args
            var attributes: [String: JSONValue] = [:]
        }
        struct EarlyStopping: Codable {
            struct Args: Codable {
                var earlyStoppingPatience: Int
                var earlyStoppingThreshold: Double
                enum CodingKeys: String, CodingKey { case earlyStoppingPatience = "early_stopping_patience", earlyStoppingThreshold = "early_stopping_threshold" }
            }
            struct Attributes: Codable {
                var earlyStoppingPatienceCounter: Int
                enum CodingKeys: String, CodingKey { case earlyStoppingPatienceCounter = "early_stopping_patience_counter" }
            }
            var args: Args
            var attributes: Attributes
        }
        var trainerControl: Control?
        var earlyStopping: EarlyStopping?
        enum CodingKeys: String, CodingKey { case trainerControl = "TrainerControl", earlyStopping = "EarlyStoppingCallback" }
    }

    init(_ state: TrainerState, arguments: TrainingArguments) {
        (bestGlobalStep, bestMetric, bestModelCheckpoint) = (state.bestGlobalStep, state.bestMetric, state.bestModelCheckpoint)
        (epoch, globalStep, logHistory, maxSteps) = (state.epoch, state.globalStep, state.logHistory, state.totalSteps)
        (loggingSteps, saveSteps, trainBatchSize) = (arguments.loggingSteps, arguments.saveSteps, arguments.perDeviceTrainBatchSize)
        evalSteps = arguments.evalSteps ?? arguments.loggingSteps
        // epoch = global_step / steps per epoch, a whole number.
        let stepsPerEpoch = state.epoch > 0 ? (Double(state.globalStep) / state.epoch).rounded() : 0
        numTrainEpochs = stepsPerEpoch > 0 ? Int((Double(state.totalSteps) / stepsPerEpoch).rounded(.up)) : nil
        statefulCallbacks = StatefulCallbacks(
            trainerControl: .init(args: .init(shouldTrainingStop: state.trainingStopped)),
            earlyStopping: arguments.earlyStoppingPatience.map { patience in
                .init(args: .init(earlyStoppingPatience: patience, earlyStoppingThreshold: arguments.earlyStoppingThreshold),
                      attributes: .init(earlyStoppingPatienceCounter: state.earlyStoppingPatienceCounter))
            })
    }

    enum CodingKeys: String, CodingKey {
        case bestGlobalStep = "best_global_step", bestMetric = "best_metric", bestModelCheckpoint = "best_model_checkpoint", epoch
        case evalSteps = "eval_steps", globalStep = "global_step", isHyperParamSearch = "is_hyper_param_search"
        case isLocalProcessZero = "is_local_process_zero", isWorldProcessZero = "is_world_process_zero", logHistory = "log_history"
        case loggingSteps = "logging_steps", maxSteps = "max_steps", numInputTokensSeen = "num_input_tokens_seen"
        case numTrainEpochs = "num_train_epochs", saveSteps = "save_steps", statefulCallbacks = "stateful_callbacks", totalFlos = "total_flos"
        case trainBatchSize = "train_batch_size", trialName = "trial_name", trialParams = "trial_params"
    }

    /// `Trainer` writes its null fields; Swift's synthesised encoding would leave them out.
    func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(bestGlobalStep, forKey: .bestGlobalStep)
        try container.encode(bestMetric, forKey: .bestMetric)
        try container.encode(bestModelCheckpoint, forKey: .bestModelCheckpoint)
        try container.encode(epoch, forKey: .epoch)
        try container.encode(evalSteps, forKey: .evalSteps)
        try container.encode(globalStep, forKey: .globalStep)
        try container.encode(isHyperParamSearch, forKey: .isHyperParamSearch)
        try container.encode(isLocalProcessZero, forKey: .isLocalProcessZero)
        try container.encode(isWorldProcessZero, forKey: .isWorldProcessZero)
        try container.encode(logHistory, forKey: .logHistory)
        try container.encode(loggingSteps, forKey: .loggingSteps)
        try container.encode(maxSteps, forKey: .maxSteps)
        try container.encode(numInputTokensSeen, forKey: .numInputTokensSeen)
        try container.encode(numTrainEpochs, forKey: .numTrainEpochs)
        try container.encode(saveSteps, forKey: .saveSteps)
        try container.encode(statefulCallbacks, forKey: .statefulCallbacks)
        try container.encode(totalFlos, forKey: .totalFlos)
        try container.encode(trainBatchSize, forKey: .trainBatchSize)
        try container.encode(trialName, forKey: .trialName)
        try container.encode(trialParams, forKey: .trialParams)
    }
}

/// `gpt2_ddp_state.json`: what a resume needs beyond `Trainer`'s state.
struct RunStateFile: Codable {
    var globalBatchSize: Int
    var worldSize: Int
    var seed: UInt64
    var windowLossSum: Double
    var windowSteps: Int
    var trainLossSum: Double
    var tokenizerFingerprint: String

    init(_ state: TrainerState) {
        (globalBatchSize, worldSize, seed, tokenizerFingerprint) = (state.globalBatchSize, state.worldSize, state.seed, state.tokenizerFingerprint)
        (windowLossSum, windowSteps, trainLossSum) = (state.windowLossSum, state.windowSteps, state.trainLossSum)
    }

    enum CodingKeys: String, CodingKey {
        case globalBatchSize = "global_batch_size", worldSize = "world_size", seed, windowLossSum = "window_loss_sum"
        case windowSteps = "window_steps", trainLossSum = "train_loss_sum", tokenizerFingerprint = "tokenizer_fingerprint"
    }
}
