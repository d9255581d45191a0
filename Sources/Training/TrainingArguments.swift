import Foundation
import GPT2

/// Every resolved setting of a run, named as `TrainingArguments` names them; saved with each
/// checkpoint as `training_args.json`.
public struct TrainingArguments: Codable, Sendable, Equatable {
    public enum EvaluationStrategy: String, Codable, Sendable, CaseIterable { case no, steps, epoch }
    /// `best`: a checkpoint at each evaluation that improves the metric for the best model.
    public enum SaveStrategy: String, Codable, Sendable, CaseIterable { case no, steps, epoch, best }

    // Where and what.
    public var outputDir: String
    public var modelNameOrPath: String?
    public var modelConfig: String?
    /// `--config-overrides`: config fields changed after loading (run_clm.py's `config_overrides`).
    public var configOverrides: String?
    public var tokenizer: String?
    public var trainFile: String
    public var validationFile: String?
    public var validationSplit = 0.2
    public var textColumn = "text"
    public var textField = "text"
    public var template = "{bos} {text} {eos}"
    public var bosToken = "<|endoftext|>"
    public var eosToken = "<|EOS|>"
    public var padToken = "<|pad|>"
    /// nil: the model's n_positions.
    public var blockSize: Int?
    public var packing = false
    /// Where tokenized data is cached (nil: OUTPUT/.cache; evaluation without it caches nothing).
    public var cacheDir: String?

    // Optimisation.
    public var perDeviceTrainBatchSize = 8
    public var perDeviceEvalBatchSize = 8
    public var gradientAccumulationSteps = 1
    public var numTrainEpochs = 3.0
    public var maxSteps = -1
    public var learningRate = 5e-5
    public var weightDecay = 0.0
    public var adamBeta1 = 0.9
    public var adamBeta2 = 0.999
    public var adamEpsilon = 1e-8
    public var maxGradNorm = 1.0
    public var lrSchedulerType = LearningRateSchedule.Kind.default
    /// `--lr-scheduler-kwargs`: only the keys given (the others are the scheduler's defaults).
    public var lrSchedulerKwargs = LearningRateSchedule.Options()
    /// As given: whole steps, or a ratio below 1 of the total.
    public var warmupSteps = "0"
    public var seed: UInt64 = 42
    /// `bf16=True`: bfloat16 operands in every matrix product, fp32 everywhere else (autocast's numerics).
    public var bf16 = false

    // Logging, evaluation, checkpoints.
    public var loggingSteps = 10
    public var evalStrategy = EvaluationStrategy.steps
    public var evalSteps: Int?
    public var saveStrategy = SaveStrategy.steps
    public var saveSteps = 500
    public var saveTotalLimit: Int?
    /// The final model is the best checkpoint's (by `metricForBestModel`).
    public var loadBestModelAtEnd = false
    /// `loss` or `perplexity` (with or without the `eval_` prefix).
    public var metricForBestModel = "loss"
    /// nil: lower is better (both metrics are).
    public var greaterIsBetter: Bool?
    /// Stop after this many evaluations without an improvement larger than the threshold.
    public var earlyStoppingPatience: Int?
    public var earlyStoppingThreshold = 0.0
    public var evalOnStart = false
    /// Only the first N training (evaluation) examples, after the split (and packing).
    public var maxTrainSamples: Int?
    public var maxEvalSamples: Int?
    /// Log a few generated examples every N steps (0: never).
    public var sampleSteps = 0
    /// Where the logged metrics also go (TensorBoard event files), and into which folder (nil:
    /// OUTPUT/runs/DATE_HOST, chosen by rank 0 when the run starts).
    public var reportTo = ReportTarget.none
    public var loggingDir: String?
    public var resumeFromCheckpoint: String?
    public var overwriteOutputDir = false

    // Data parallelism.
    /// Compare the ranks' parameter checksums every N steps (0: only at the start).
    public var replicaCheckSteps = 100
    /// Reduce each gradient bucket on a communication thread while backward computes the layers
    /// below it. Off by default: with one core per rank on one machine the blocking buckets after
    /// backward measured faster (BENCHMARKS.md).
    public var overlapAllreduce = false
    /// Keep only each block's output in forward and compute the block again in backward.
    public var gradientCheckpointing = false
    public var allreduceBucketMB = 25.0
    /// ZeRO stage: 0 replicates AdamW on every rank; 1 shards its moments and work by rank
    /// (reduce-scatter of the gradients, all-gather of the parameters).
    public var zeroStage = 0

    // Filled in when the run starts.
    public var worldSize = 1
    public var totalSteps = 0
    public var resolvedWarmupSteps = 0

    public init(outputDir: String, trainFile: String) {
        self.outputDir = outputDir
        self.trainFile = trainFile
    }

    enum CodingKeys: String, CodingKey {
        case outputDir = "output_dir", modelNameOrPath = "model_name_or_path", modelConfig = "model_config", configOverrides = "config_overrides", tokenizer
        case trainFile = "train_file", validationFile = "validation_file", validationSplit = "validation_split"
        case textColumn = "text_column", textField = "text_field", template, bosToken = "bos_token", eosToken = "eos_token"
        case padToken = "pad_token", blockSize = "block_size", packing, cacheDir = "cache_dir"
        case perDeviceTrainBatchSize = "per_device_train_batch_size", perDeviceEvalBatchSize = "per_device_eval_batch_size"
        case gradientAccumulationSteps = "gradient_accumulation_steps", numTrainEpochs = "num_train_epochs", maxSteps = "max_steps"
        case learningRate = "learning_rate", weightDecay = "weight_decay", adamBeta1 = "adam_beta1", adamBeta2 = "adam_beta2"
        case adamEpsilon = "adam_epsilon", maxGradNorm = "max_grad_norm", lrSchedulerType = "lr_scheduler_type"
        case lrSchedulerKwargs = "lr_scheduler_kwargs"
        case warmupSteps = "warmup_steps", seed, bf16, loggingSteps = "logging_steps", evalStrategy = "eval_strategy"
        case evalSteps = "eval_steps", saveStrategy = "save_strategy", saveSteps = "save_steps", saveTotalLimit = "save_total_limit"
        case loadBestModelAtEnd = "load_best_model_at_end", metricForBestModel = "metric_for_best_model", greaterIsBetter = "greater_is_better"
        case earlyStoppingPatience = "early_stopping_patience", earlyStoppingThreshold = "early_stopping_threshold", evalOnStart = "eval_on_start"
        case maxTrainSamples = "max_train_samples", maxEvalSamples = "max_eval_samples"
        case sampleSteps = "sample_steps", reportTo = "report_to", loggingDir = "logging_dir"
        case resumeFromCheckpoint = "resume_from_checkpoint", overwriteOutputDir = "overwrite_output_dir"
        case replicaCheckSteps = "replica_check_steps", overlapAllreduce = "overlap_allreduce", allreduceBucketMB = "allreduce_bucket_mb"
        case gradientCheckpointing = "gradient_checkpointing", zeroStage = "zero_stage"
        case worldSize = "world_size", totalSteps = "total_steps", resolvedWarmupSteps = "resolved_warmup_steps"
    }

    /// Optimisation steps for a data set with `stepsPerEpoch`: `max_steps` when positive, else
    /// the epochs (fractions allowed, rounded up as `Trainer` does). Epochs whose steps exceed
    /// Int give Int.max steps (train until stopped): converting such a Double to Int is undefined
    /// in this unchecked build, and gave Int.min, so a huge epoch count ran 1 step.
    public func totalSteps(stepsPerEpoch: Int) -> Int {
        guard maxSteps <= 0 else { return maxSteps }
        let steps = (numTrainEpochs * Double(stepsPerEpoch)).rounded(.up)
        return steps < Double(Int.max) ? max(1, Int(steps)) : Int.max
    }
}

extension TrainingArguments {
    public enum BestModelMetric: String, Sendable { case loss, perplexity }

    /// `--metric-for-best-model`, with or without `Trainer`'s `eval_` prefix.
    public var bestModelMetric: BestModelMetric {
        BestModelMetric(rawValue: metricForBestModel.hasPrefix("eval_") ? String(metricForBestModel.dropFirst(5)) : metricForBestModel) ?? .loss
    }

    /// The first flag given that works on evaluations (and so needs validation data).
    public var flagNeedingEvaluation: String? {
        [(saveStrategy == .best, "--save-strategy best"), (loadBestModelAtEnd, "--load-best-model-at-end"),
         (earlyStoppingPatience != nil, "--early-stopping-patience"), (evalOnStart, "--eval-on-start")].first(where: \.0)?.1
    }

    /// The checks `TrainingArguments.__post_init__` makes of the strategies, and this program's of
    /// the metric; nil when they hold.
    public func bestModelSettingsProblem() -> String? {
        let metricName = metricForBestModel.hasPrefix("eval_") ? String(metricForBestModel.dropFirst(5)) : metricForBestModel
        if BestModelMetric(rawValue: metricName) == nil { return "--metric-for-best-model must be loss or perplexity (eval_loss, eval_perplexity), got '\(metricForBestModel)'" }
        if evalStrategy == .no, let flag = flagNeedingEvaluation { return "\(flag) needs evaluations: give --eval-strategy steps or epoch" }
        if loadBestModelAtEnd && saveStrategy != .best {
            guard saveStrategy.rawValue == evalStrategy.rawValue else {
                return "--load-best-model-at-end requires the save and eval strategy to match, but found --eval-strategy \(evalStrategy.rawValue) and --save-strategy \(saveStrategy.rawValue)"
            }
            let evaluationInterval = evalSteps ?? loggingSteps
            if saveStrategy == .steps && saveSteps % evaluationInterval != 0 {
                return "--load-best-model-at-end requires --save-steps to be a round multiple of --eval-steps, but found \(saveSteps) and \(evaluationInterval)"
            }
        }
        return nil
    }

    /// Settings that name a run's own start rather than what it trains: they may differ on resume.
    static let perStartKeys = Set([CodingKeys.resumeFromCheckpoint, .overwriteOutputDir, .worldSize, .totalSteps, .resolvedWarmupSteps].map(\.stringValue))

    /// The settings whose values differ between `self` and `other`, as (flag, other's value, own
    /// value), every value as JSON text; `ignoring` names fields (by their JSON key) left out.
    public func differences(from other: TrainingArguments, ignoring: Set<String> = []) throws -> [(flag: String, theirs: String, ours: String)] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        func fields(_ arguments: TrainingArguments) throws -> [String: JSONValue] {
            try JSONDecoder().decode([String: JSONValue].self, from: encoder.encode(arguments))
        }
        let (ours, theirs) = (try fields(self), try fields(other))
        func text(_ value: JSONValue?) throws -> String { String(decoding: try encoder.encode(value ?? .null), as: UTF8.self) }
        return try Set(ours.keys).union(theirs.keys).subtracting(ignoring).sorted().compactMap { key in
            guard ours[key] != theirs[key] else { return nil }
            return ("--" + key.replacingOccurrences(of: "_", with: "-"), try text(theirs[key]), try text(ours[key]))
        }
    }

    /// What a resumed run changes against the checkpoint's `training_args.json`, for the log.
    public func changedSettings(since saved: TrainingArguments) throws -> [String] {
        try differences(from: saved, ignoring: Self.perStartKeys).map { "\($0.flag) \($0.theirs) -> \($0.ours)" }
    }
}
