import Distributed
import Foundation
import GPT2
import Kernels
import Tokenizer
import Training

#if canImport(Glibc)
import Glibc
#endif

/// `gpt2-ddp train`: what `Trainer.train()` and `save_model()` do in the Hugging Face recipe.
enum TrainCommand: Command {
    /// Flags shared with `evaluate`: the model, its tokenizer and how texts become examples.
    static let modelAndDataFlags: [Flag] = [
        .option("--model-name-or-path", "DIR", "Hugging Face GPT-2 directory to start from"),
        .option("--model-config", "NAME|FILE", "train from scratch: a preset (tiny, gpt2, gpt2-medium, gpt2-large, gpt2-xl) or a config.json"),
        InitCommand.configOverridesFlag,
        .option("--tokenizer", "DIR", "tokenizer directory (vocab.json, merges.txt); default: the model directory"),
        .option("--text-column", "NAME", "text column of a .csv file", default: "text"),
        .option("--text-field", "NAME", "text field of a .jsonl file", default: "text"),
        .option("--template", "TEXT", "how an example is wrapped; {bos}, {text} and {eos} are replaced", default: "{bos} {text} {eos}"),
        .option("--bos-token", "TOKEN", "added as a special token", default: "<|endoftext|>"),
        .option("--eos-token", "TOKEN", "added as a special token", default: "<|EOS|>"),
        .option("--pad-token", "TOKEN", "added as a special token", default: "<|pad|>"),
        .option("--block-size", "N", "examples longer than this are truncated (default: the model's n_positions)", maximum: CountLimit.tokens),
        .option("--per-device-eval-batch-size", "N", "examples per evaluation batch on each rank", default: "8", maximum: CountLimit.batchSize),
        .option("--seed", "N", "seed for initialisation, data order and the validation split", default: "42"),
        ComputeThreads.flag,
        bf16Flag,
    ]

    /// `TrainingArguments(gradient_checkpointing=True)`, shared with `bench`.
    static let gradientCheckpointingFlag = Flag.toggle("--gradient-checkpointing", "keep only each block's output in forward and compute the block "
                                                       + "again in backward: the same gradients, bit for bit, with a fraction of the activations' memory, for about a third more compute")

    /// `TrainingArguments(bf16=True)` on a CPU, shared with `bench`.
    static let bf16Flag = Flag.toggle("--bf16", "bfloat16 operands in every matrix product, accumulated in fp32, as torch.autocast on a CPU "
                                      + "(needs AVX512-BF16); weights, gradients, AdamW, LayerNorm, softmax and the loss stay fp32")

    static let spec = CommandSpec(
        name: "train",
        summary: "Fine-tune or train GPT-2 on a text file (.txt, .csv, .jsonl), evaluate, checkpoint and save in Hugging Face's layout.",
        flags: modelAndDataFlags + [
            .option("--train-file", "FILE", "training data: .txt (a line per example), .csv or .jsonl (text or input_ids)"),
            .option("--validation-file", "FILE", "validation data; without it --validation-split holds out part of the training file"),
            .option("--validation-split", "FRACTION", "share held out for validation when no validation file is given (0 = none)", default: "0.2"),
            .toggle("--packing", "concatenate examples into full blocks instead of padding each batch"),
            .option("--cache-dir", "DIR", "where tokenized data is cached, keyed by file and tokenizer (default: OUTPUT/.cache)"),
            .option("--output-dir", "DIR", "where checkpoints, metrics.jsonl, loss.svg and the final model go"),
            .toggle("--overwrite-output-dir", "start afresh in an output dir that is not empty: removes only what gpt2-ddp wrote there (its checkpoints, metrics and final model)"),
            .option("--per-device-train-batch-size", "N", "examples per micro-batch on each rank", default: "8", maximum: CountLimit.batchSize),
            .option("--gradient-accumulation-steps", "N", "micro-batches per optimisation step", default: "1", maximum: CountLimit.accumulationSteps),
            .option("--num-train-epochs", "N", "epochs (fractions allowed)", default: "3", maximum: CountLimit.epochs),
            .option("--max-steps", "N", "optimisation steps; overrides the epochs when positive", default: "-1", maximum: CountLimit.steps),
            .option("--learning-rate", "LR", "peak learning rate", default: "5e-5"),
            .option("--weight-decay", "W", "AdamW weight decay (not on biases and LayerNorm)", default: "0"),
            .option("--adam-beta1", "B", "AdamW beta1", default: "0.9"),
            .option("--adam-beta2", "B", "AdamW beta2", default: "0.999"),
            .option("--adam-epsilon", "E", "AdamW epsilon", default: "1e-8"),
            .option("--max-grad-norm", "N", "clip the global gradient norm (0 = off)", default: "1.0"),
            .option("--lr-scheduler-type", "KIND", LearningRateSchedule.Kind.allCases.map(\.rawValue).joined(separator: ", "),
                    default: LearningRateSchedule.Kind.default.rawValue),
            .option("--lr-scheduler-kwargs", "JSON", "the scheduler's settings under transformers' names, e.g. {\"num_cycles\": 2} or {\"min_lr_rate\": 0.1}"),
            .option("--warmup-steps", "N", "warmup steps, or a ratio of the total below 1", default: "0"),
            .option("--logging-steps", "N", "log (and append to metrics.jsonl) every N steps", default: "10", maximum: CountLimit.steps),
            .option("--report-to", "none|tensorboard|all", "also write the logged metrics as TensorBoard event files (all: every integration, i.e. tensorboard)", default: "none"),
            .option("--logging-dir", "DIR", "TensorBoard log directory (default: OUTPUT/runs/DATE_HOST)"),
            .option("--eval-strategy", "WHEN", "no, steps or epoch", default: "steps"),
            .option("--eval-steps", "N", "evaluate every N steps (default: --logging-steps)", maximum: CountLimit.steps),
            .option("--save-steps", "N", "write a checkpoint every N steps (and at the end)", default: "500", maximum: CountLimit.steps),
            .option("--save-strategy", "WHEN", "no, steps, epoch or best (at an evaluation that improves --metric-for-best-model)", default: "steps"),
            .option("--save-total-limit", "N", "keep only the newest N checkpoints (and the best)", maximum: CountLimit.steps),
            .toggle("--load-best-model-at-end", "the final model is the best checkpoint's (needs matching --eval-strategy and --save-strategy)"),
            .option("--metric-for-best-model", "NAME", "loss or perplexity, of the evaluation", default: "loss"),
            .toggle("--greater-is-better", "a higher --metric-for-best-model is better (default: lower, as for loss and perplexity)"),
            .option("--early-stopping-patience", "N", "stop after N evaluations without an improvement of more than --early-stopping-threshold", maximum: CountLimit.steps),
            .option("--early-stopping-threshold", "X", "how much an evaluation must improve the best metric to count", default: "0"),
            .toggle("--eval-on-start", "evaluate once before the first step"),
            .option("--max-train-samples", "N", "train on the first N examples only (after the validation split and packing)", maximum: CountLimit.examples),
            .option("--max-eval-samples", "N", "evaluate on the first N validation examples only", maximum: CountLimit.examples),
            .option("--resume-from-checkpoint", "auto|latest|DIR", "continue a run exactly from a checkpoint (auto: the latest if there is one, else start afresh)"),
            .option("--sample-steps", "N", "log 3 ideas generated from the bos token every N steps (0: never)", default: "0", maximum: CountLimit.steps),
            .option("--replica-check-steps", "N", "under MPI, compare the ranks' parameter checksums every N steps (0: at start and end only)", default: "100",
                    maximum: CountLimit.steps),
            .option("--allreduce-bucket-mb", "MB", "size of the gradient buckets reduced while backward runs", default: "25", maximum: CountLimit.megabytes),
            gradientCheckpointingFlag,
            .option("--zero-stage", "0|1", "1: shard AdamW's moments and work across the ranks (ZeRO-1): the gradients are reduce-scattered and the "
                    + "updated parameters all-gathered, the same bytes on the wire as an allreduce; 0: every rank holds and updates everything", default: "0"),
            .toggle("--overlap-allreduce", "a communication thread starts and drives each gradient bucket's reduction while backward computes the layers below "
                    + "(same results; pays over a network, not on one machine with a core per rank, see BENCHMARKS.md)"),
        ])

    static func positiveInt(_ arguments: ParsedArguments, _ name: String) throws -> Int {
        guard let value = try arguments.int(name), value > 0 else {
            throw CLIError.usage(command: arguments.command, message: "\(name) must be a positive integer")
        }
        return value
    }

    /// The settings `train` and `evaluate` share, read from the flags.
    static func commonArguments(_ arguments: ParsedArguments, outputDir: String, dataFile: String) throws -> TrainingArguments {
        try ComputeThreads.apply(arguments)
        var settings = TrainingArguments(outputDir: outputDir, trainFile: dataFile)
        settings.bf16 = arguments.isSet("--bf16")
        try Kernels.useBFloat16Products(settings.bf16)
        settings.modelNameOrPath = arguments.string("--model-name-or-path")
        settings.modelConfig = arguments.string("--model-config")
        settings.configOverrides = arguments.string("--config-overrides")
        if settings.modelNameOrPath != nil && settings.modelConfig != nil {
            throw CLIError.usage(command: arguments.command, message: "give --model-name-or-path or --model-config, not both")
        }
        settings.tokenizer = arguments.string("--tokenizer")
        settings.textColumn = try arguments.required("--text-column")
        settings.textField = try arguments.required("--text-field")
        settings.template = try arguments.required("--template")
        guard settings.template.contains("{text}") else { throw CLIError.usage(command: arguments.command, message: "--template must contain {text}") }
        settings.bosToken = try arguments.required("--bos-token")
        settings.eosToken = try arguments.required("--eos-token")
        settings.padToken = try arguments.required("--pad-token")
        settings.blockSize = try arguments.string("--block-size").map { _ in try positiveInt(arguments, "--block-size") }
        settings.perDeviceEvalBatchSize = try positiveInt(arguments, "--per-device-eval-batch-size")
        guard let seed = UInt64(try arguments.required("--seed")) else {
            throw CLIError.usage(command: arguments.command, message: "--seed must be a non-negative integer")
        }
        settings.seed = seed
        return settings
    }

    static func run(_ arguments: ParsedArguments, console: Console) throws {
        let outputDir = try arguments.required("--output-dir")
        var settings = try commonArguments(arguments, outputDir: outputDir, dataFile: try arguments.required("--train-file"))
        settings.validationFile = arguments.string("--validation-file")
        settings.validationSplit = try arguments.double("--validation-split")!
        guard (0..<1).contains(settings.validationSplit) else { throw CLIError.usage(command: spec.name, message: "--validation-split must be in [0, 1)") }
        settings.packing = arguments.isSet("--packing")
        settings.cacheDir = arguments.string("--cache-dir")
        settings.overwriteOutputDir = arguments.isSet("--overwrite-output-dir")
        settings.perDeviceTrainBatchSize = try positiveInt(arguments, "--per-device-train-batch-size")
        settings.gradientAccumulationSteps = try positiveInt(arguments, "--gradient-accumulation-steps")
        guard settings.perDeviceTrainBatchSize * settings.gradientAccumulationSteps <= CountLimit.examplesPerRankStep else {
            throw CLIError.usage(command: spec.name, message: "--per-device-train-batch-size x --gradient-accumulation-steps must be at most "
                + "\(CountLimit.examplesPerRankStep) examples per rank and step, got \(settings.perDeviceTrainBatchSize) x \(settings.gradientAccumulationSteps)")
        }
        settings.numTrainEpochs = try arguments.double("--num-train-epochs")!
        settings.maxSteps = try arguments.int("--max-steps")!
        guard settings.maxSteps > 0 || settings.numTrainEpochs > 0 else {
            throw CLIError.usage(command: spec.name, message: "--num-train-epochs or --max-steps must be positive")
        }
        settings.learningRate = try arguments.double("--learning-rate")!
        settings.weightDecay = try arguments.double("--weight-decay")!
        settings.adamBeta1 = try arguments.double("--adam-beta1")!
        settings.adamBeta2 = try arguments.double("--adam-beta2")!
        settings.adamEpsilon = try arguments.double("--adam-epsilon")!
        do {
            try AdamW.Settings(beta1: settings.adamBeta1, beta2: settings.adamBeta2, epsilon: settings.adamEpsilon, weightDecay: settings.weightDecay)
                .validate(learningRate: settings.learningRate)
        } catch let error as TrainingError {
            throw CLIError.usage(command: spec.name, message: error.description)
        }
        settings.maxGradNorm = try arguments.double("--max-grad-norm")!
        guard let scheduler = LearningRateSchedule.Kind(rawValue: try arguments.required("--lr-scheduler-type")) else {
            throw CLIError.usage(command: spec.name, message: "--lr-scheduler-type must be one of \(LearningRateSchedule.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        settings.lrSchedulerType = scheduler
        do {
            settings.lrSchedulerKwargs = try LearningRateSchedule.Options(json: arguments.string("--lr-scheduler-kwargs") ?? "{}", for: scheduler, peak: settings.learningRate)
        } catch let error as TrainingError {
            throw CLIError.usage(command: spec.name, message: error.description)
        }
        settings.warmupSteps = try arguments.required("--warmup-steps")
        settings.loggingSteps = try positiveInt(arguments, "--logging-steps")
        guard let reportTo = TrainingArguments.ReportTarget(rawValue: try arguments.required("--report-to")) else {
            throw CLIError.usage(command: spec.name, message: "--report-to must be none, tensorboard or all")
        }
        settings.reportTo = reportTo
        settings.loggingDir = arguments.string("--logging-dir")
        guard let strategy = TrainingArguments.EvaluationStrategy(rawValue: try arguments.required("--eval-strategy")) else {
            throw CLIError.usage(command: spec.name, message: "--eval-strategy must be no, steps or epoch")
        }
        settings.evalStrategy = strategy
        settings.evalSteps = try arguments.string("--eval-steps").map { _ in try positiveInt(arguments, "--eval-steps") }
        settings.saveSteps = try positiveInt(arguments, "--save-steps")
        guard let saveStrategy = TrainingArguments.SaveStrategy(rawValue: try arguments.required("--save-strategy")) else {
            throw CLIError.usage(command: spec.name, message: "--save-strategy must be no, steps, epoch or best")
        }
        settings.saveStrategy = saveStrategy
        settings.loadBestModelAtEnd = arguments.isSet("--load-best-model-at-end")
        settings.metricForBestModel = try arguments.required("--metric-for-best-model")
        settings.greaterIsBetter = arguments.isSet("--greater-is-better") ? true : nil
        settings.earlyStoppingPatience = try arguments.string("--early-stopping-patience").map { _ in try positiveInt(arguments, "--early-stopping-patience") }
        settings.earlyStoppingThreshold = try arguments.double("--early-stopping-threshold")!
        guard settings.earlyStoppingThreshold >= 0 else { throw CLIError.usage(command: spec.name, message: "--early-stopping-threshold must be 0 or more") }
        settings.evalOnStart = arguments.isSet("--eval-on-start")
        settings.maxTrainSamples = try arguments.string("--max-train-samples").map { _ in try positiveInt(arguments, "--max-train-samples") }
        settings.maxEvalSamples = try arguments.string("--max-eval-samples").map { _ in try positiveInt(arguments, "--max-eval-samples") }
        settings.saveTotalLimit = try arguments.string("--save-total-limit").map { _ in try positiveInt(arguments, "--save-total-limit") }
        settings.resumeFromCheckpoint = arguments.string("--resume-from-checkpoint")
        settings.sampleSteps = try arguments.int("--sample-steps")!
        settings.replicaCheckSteps = try arguments.int("--replica-check-steps")!
        settings.allreduceBucketMB = try arguments.double("--allreduce-bucket-mb")!
        guard settings.allreduceBucketMB > 0 else { throw CLIError.usage(command: spec.name, message: "--allreduce-bucket-mb must be positive") }
        settings.overlapAllreduce = arguments.isSet("--overlap-allreduce")
        settings.gradientCheckpointing = arguments.isSet("--gradient-checkpointing")
        settings.zeroStage = try arguments.int("--zero-stage")!
        guard [0, 1].contains(settings.zeroStage) else {
            throw CLIError.usage(command: spec.name, message: "--zero-stage must be 0 (replicated optimizer) or 1 (sharded optimizer), got \(settings.zeroStage)")
        }
        if let problem = settings.bestModelSettingsProblem() { throw CLIError.usage(command: spec.name, message: problem) }
        // Before any rank starts: a model whose training state cannot fit is refused at once.
        if let directory = settings.modelNameOrPath {
            try GPT2Model.loadConfig(directory: directory).requireTrainingMemory(source: GPT2Model.configPath(directory: directory), zeroStage: settings.zeroStage)
        } else if let source = settings.modelConfig {
            try GPT2Config.resolve(source).requireTrainingMemory(source: source, zeroStage: settings.zeroStage)
        }

        try runOnEveryRank(command: spec.name, console: console) { communicator in
            // Only rank 0 speaks; the others' errors still reach standard error.
            let quiet = !communicator.isMain
            var output = TrainerOutput(log: { if !quiet { console.warn($0) } }, progress: quiet ? { _ in } : progressPrinter(console))
            try settings.checkAgreement(across: communicator)
            // Rank 0 alone locks and checks the output directory; the others wait for its verdict
            // (a refusal ends the job from rank 0).
            var runDirectory: RunDirectory?, resumePath: String?
            if communicator.isMain {
                let finalFileNames = [GPT2Model.configFileName, GPT2Model.weightsFileName, GenerationConfig.fileName, GPT2Tokenizer.fastTokenizerFileName]
                    + GPT2Tokenizer.savedFileNames
                (runDirectory, resumePath) = try RunDirectory.start(settings, finalFileNames: finalFileNames, log: output.log)
            }
            try communicator.barrier()
            // Before the weights exist: a model whose weights, gradients and moments alone outgrow this rank's share of the node.
            if let source = settings.modelNameOrPath.map({ $0 + "/" + GPT2Model.configFileName }) ?? settings.modelConfig,
               let config = try? GPT2Config.resolve(source) {
                try MemoryPlan.check(arguments: settings, config: config, trainLength: 1, evalLength: 0, worldSize: communicator.size, weightsOnly: true)
            }
            let run = try PreparedRun.prepare(settings, dataFile: settings.trainFile, communicator: communicator, log: output.log)
            // Before the optimizer's moments and the activations exist: does this rank's share of the node hold them?
            try MemoryPlan.check(arguments: settings, config: run.model.config, trainLength: run.train.longestExample,
                                 evalLength: run.validation?.longestExample ?? 0, worldSize: communicator.size)
            if let tokenizer = run.tokenizer, let bos = tokenizer.bosTokenID {
                var sampling = GenerationSettings()
                (sampling.maxNewTokens, sampling.eosTokenIDs) = (40, Set([tokenizer.eosTokenID].compactMap { $0 }))
                output.samples = { [sampling] model, step in
                    // The step is mixed into the seed: each sampling step draws new texts.
                    var drawn = sampling
                    drawn.seed = settings.seed &+ UInt64(step) &* 0x9E37_79B9_7F4A_7C15
                    return try model.generate(prompt: [bos], count: 3, batchSize: 3, settings: drawn).map { try tokenizer.decode($0, skipSpecialTokens: true) }
                }
            }
            let trainer = try Trainer(arguments: settings, model: run.model, train: run.train, validation: run.validation,
                                      collator: run.collator, communicator: communicator, runDirectory: runDirectory,
                                      tokenizerFingerprint: run.tokenizerFingerprint, output: output,
                                      extraFiles: { directory in
                                          try run.generationConfig.write(directory: directory)
                                          try run.tokenizer?.save(to: URL(fileURLWithPath: directory))
                                      })
            if let resumePath, communicator.isMain { try trainer.resume(from: resumePath) }
            try trainer.synchronizeReplicas()
            let trainLoss = try trainer.train()
            guard communicator.isMain else { return }
            console.print("train_loss: \(Float(trainLoss))")
            if let best = trainer.state.bestMetric { console.print("best_eval_\(settings.bestModelMetric.rawValue): \(Float(best))") }
            console.print("model: \(outputDir)")
        }
    }

    /// Runs `body` in this process's world: the MPI world under mpirun, else a world of one. A
    /// failure on any rank of several ends the whole job at once, naming the rank, so that no
    /// other rank waits forever in a collective.
    static func runOnEveryRank(command: String, console: Console, _ body: (Communicator) throws -> Void) throws {
        let communicator = try World.join()
        do {
            try body(communicator)
            try communicator.finish()
        } catch where communicator.size > 1 {
            console.warn("gpt2-ddp \(command): error: rank \(communicator.rank) of \(communicator.size): \(error)")
            communicator.abort(code: GPT2DDP.exitCode(for: error))
        }
    }

    /// On a terminal the progress line is redrawn in place; elsewhere it is left out, since the
    /// log lines carry the same figures.
    static func progressPrinter(_ console: Console) -> (String) -> Void {
        guard isatty(STDERR_FILENO) == 1 else { return { _ in } }
        return { line in FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8)) }
    }
}
