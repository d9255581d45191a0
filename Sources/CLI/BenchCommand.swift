import Distributed
import Foundation
import GPT2
import Kernels
import Training

/// Times the matrix multiplications of GPT-2 124M and training steps of a randomly initialised
/// model on random tokens, against the measured peak of the cores used.
enum BenchCommand: Command {
    static let spec = CommandSpec(
        name: "bench",
        summary: "Time GPT-2's matrix multiplications and training steps (forward, backward, clipping, AdamW) of a random model: "
            + "ms, tokens/s, GFLOP/s, fraction of peak. Without --model-config, --batch-size, --seq-len or --num-threads "
            + "it runs the full table. Use a release build.",
        flags: [
            .option("--model-config", "NAME|FILE", "time one training step configuration of this preset or config.json (default gpt2)"),
            InitCommand.configOverridesFlag,
            .option("--batch-size", "B", "sequences per step (default 4)", maximum: CountLimit.batchSize),
            .option("--seq-len", "T", "tokens per sequence (default 64)", maximum: CountLimit.tokens),
            .option("--num-threads", "N", "threads (default: the cores this process may run on, \(Kernels.availableCoreCount))", maximum: CountLimit.threads),
            .option("--steps", "N", "timed repetitions of each measurement, after one untimed warm-up", default: "5", maximum: CountLimit.repetitions),
            .option("--seed", "N", "seed for the weights and tokens", default: "1"),
            .toggle("--matmul", "only the matrix multiplication table"),
            TrainCommand.bf16Flag,
            TrainCommand.gradientCheckpointingFlag,
            .option("--allreduce-mb", "MB", "instead: time an allreduce of this many MB across the MPI ranks (run under mpirun)", maximum: CountLimit.megabytes),
            .toggle("--generate", "instead: time greedy generation with the key/value cache (batch 1 and 8 unless --batch-size, "
                + "fp32 and bf16 weights, 1 thread unless --num-threads) and the memory read bandwidth that bounds it"),
            .option("--max-new-tokens", "N", "with --generate: new tokens per sequence", default: "50", maximum: CountLimit.tokens),
            .option("--weights-dtype", "fp32|bf16", "with --generate: only this weight type"),
            .toggle("--json", "print one JSON object per measurement"),
        ])

    static func run(_ arguments: ParsedArguments, console: Console) throws {
        let steps = try arguments.int("--steps")!
        guard steps > 0 else { throw CLIError.usage(command: spec.name, message: "--steps must be positive") }
        guard let seed = UInt64(try arguments.required("--seed")) else {
            throw CLIError.usage(command: spec.name, message: "--seed must be a non-negative integer")
        }
        let json = arguments.isSet("--json")
        if let megabytes = try arguments.double("--allreduce-mb") {
            guard megabytes > 0 else { throw CLIError.usage(command: spec.name, message: "--allreduce-mb must be positive") }
            return try timeAllReduce(megabytes: megabytes, steps: steps, console: console)
        }
        if arguments.isSet("--generate") { return try timeGeneration(arguments, steps: steps, seed: seed, console: console) }
        let singleConfiguration = ["--model-config", "--config-overrides", "--batch-size", "--seq-len", "--num-threads"].contains { arguments.string($0) != nil }
        let savedThreadCount = Kernels.threadCount, savedBFloat16 = Kernels.bfloat16Products
        defer {
            Kernels.threadCount = savedThreadCount
            try? Kernels.useBFloat16Products(savedBFloat16)
        }
        try Kernels.useBFloat16Products(arguments.isSet("--bf16"))
        let corePeak = Kernels.measureCorePeakGFLOPS()
        let report = Report(console: console, json: json, corePeak: corePeak)
        report.peak()

        if singleConfiguration {
            let threads = try arguments.int("--num-threads") ?? Kernels.availableCoreCount
            guard threads > 0 else { throw CLIError.usage(command: spec.name, message: "--num-threads must be positive") }
            var modelArguments = arguments
            modelArguments.values["--model-config"] = [arguments.string("--model-config") ?? "gpt2"]
            let config = try InitCommand.resolveConfig(modelArguments)
            let B = try arguments.int("--batch-size") ?? 4, T = try arguments.int("--seq-len") ?? 64
            guard B > 0, T > 1, T <= config.nPositions else {
                throw CLIError.usage(command: spec.name, message: "need --batch-size > 0 and 1 < --seq-len <= n_positions (\(config.nPositions))")
            }
            let model = try GPT2Model.randomlyInitialized(config: config, seed: seed)
            model.gradientCheckpointing = arguments.isSet("--gradient-checkpointing")
            try timeTrainingStep(model: model, modelName: modelArguments.string("--model-config")!, batchSize: B, sequenceLength: T,
                                 threads: threads, steps: steps, seed: seed, report: report)
            return
        }

        let threadCounts = Kernels.availableCoreCount >= 2 ? [1, 2] : [1]
        let config = try GPT2Config.preset("gpt2")
        for threads in threadCounts {
            for (B, T) in [(4, 64), (16, 64)] {
                timeMatrixMultiplications(config: config, batchSize: B, sequenceLength: T, threads: threads, steps: steps, seed: seed, report: report)
            }
        }
        if arguments.isSet("--matmul") { return }
        let model = try GPT2Model.randomlyInitialized(config: config, seed: seed)
        model.gradientCheckpointing = arguments.isSet("--gradient-checkpointing")
        for threads in threadCounts {
            for (B, T) in [(4, 64), (16, 64)] {
                try timeTrainingStep(model: model, modelName: "gpt2", batchSize: B, sequenceLength: T, threads: threads, steps: steps,
                                     seed: seed, report: report)
            }
        }
    }

    /// Open MPI's in-place sum of `megabytes` of floats over all ranks: the median time and the
    /// bus bandwidth (2(N-1)/N · bytes / time, what each rank sends in a ring allreduce).
    static func timeAllReduce(megabytes: Double, steps: Int, console: Console) throws {
        try TrainCommand.runOnEveryRank(command: spec.name, console: console) { communicator in
            let buffer = FloatBuffer(count: Int(megabytes * 1e6) / 4)
            var times: [Double] = []
            for step in 0...steps {
                try communicator.barrier()
                let start = DispatchTime.now().uptimeNanoseconds
                try communicator.allReduceSum(buffer.buffer)
                if step > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
            }
            let median = times.sorted()[times.count / 2]
            let ranks = Double(communicator.size)
            guard communicator.isMain else { return }
            console.print(String(format: #"{"what":"allreduce","ranks":%d,"megabytes":%.1f,"ms":%.1f,"bus_gb_per_s":%.2f}"#,
                                 communicator.size, megabytes, median * 1000, 2 * (ranks - 1) / ranks * megabytes / 1000 / median))
        }
    }

    /// Greedy generation of a randomly initialised model from the bos token, as `generate` runs it
    /// (key/value cache, every sequence made to run the full length), against the limit that the
    /// memory bandwidth sets: at batch 1 every step reads every matrix weight once.
    static func timeGeneration(_ arguments: ParsedArguments, steps: Int, seed: UInt64, console: Console) throws {
        let threads = try arguments.int("--num-threads") ?? 1
        let newTokens = try arguments.int("--max-new-tokens")!
        guard threads > 0, newTokens > 0 else { throw CLIError.usage(command: spec.name, message: "--num-threads and --max-new-tokens must be positive") }
        let batchSizes = try arguments.int("--batch-size").map { [$0] } ?? [1, 8]
        guard batchSizes.allSatisfy({ $0 > 0 }) else { throw CLIError.usage(command: spec.name, message: "--batch-size must be positive") }
        let dtypes = try arguments.string("--weights-dtype").map { [try GenerateCommand.weightsDType($0, command: spec.name)] } ?? WeightsDType.allCases
        var modelArguments = arguments
        modelArguments.values["--model-config"] = [arguments.string("--model-config") ?? "gpt2"]
        let config = try InitCommand.resolveConfig(modelArguments)
        guard newTokens < config.nPositions else { throw CLIError.usage(command: spec.name, message: "--max-new-tokens must be below n_positions (\(config.nPositions))") }

        let savedThreadCount = Kernels.threadCount
        defer { Kernels.threadCount = savedThreadCount }
        Kernels.threadCount = threads
        let report = Report(console: console, json: arguments.isSet("--json"), corePeak: Kernels.measureCorePeakGFLOPS())
        let bandwidth = Kernels.measureReadBandwidth()
        report.bandwidth(bandwidth, threads: threads)
        let model = try GPT2Model.randomlyInitialized(config: config, seed: seed)
        var settings = GenerationSettings()
        settings.greedy = true
        settings.maxNewTokens = newTokens
        settings.stopAtEOS = false
        let prompt = [config.bosTokenID ?? 0]
        for dtype in dtypes {
            let weights = DecodingWeights(model: model, dtype: dtype)
            let bytesPerStep = Double(config.matrixWeightCount * dtype.bytesPerWeight)
            for B in batchSizes {
                let milliseconds = try medianMilliseconds(steps: steps) {
                    _ = try model.generate(prompt: prompt, count: B, batchSize: B, settings: settings, weights: weights)
                }
                let stepsPerSecond = Double(newTokens) / (milliseconds / 1000)
                let limit = bandwidth * 1e9 / bytesPerStep * Double(B)
                report.line(what: "generate", fields: [("model", .string(modelArguments.string("--model-config")!)),
                                                       ("weights_dtype", .string(dtype.rawValue)), ("new_tokens", .number(newTokens))],
                            batchSize: B, sequenceLength: newTokens, threads: threads, steps: steps,
                            milliseconds: milliseconds / Double(newTokens), tokensPerSecond: stepsPerSecond * Double(B),
                            gflops: 2 * Double(config.matrixWeightCount) * stepsPerSecond * Double(B) / 1e9,
                            extra: [("bandwidth_limit_tokens_per_second", .decimal(limit)),
                                    ("fraction_of_bandwidth_limit", .decimal(stepsPerSecond * Double(B) / limit))])
            }
        }
    }

    /// A whole training step on random tokens, as the trainer takes it: forward (with the config's
    /// dropout), backward (gradients zeroed first), clipping and AdamW (weight decay 0.01); the
    /// median of `steps`.
    static func timeTrainingStep(model: GPT2Model, modelName: String, batchSize B: Int, sequenceLength T: Int, threads: Int,
                                 steps: Int, seed: UInt64, report: Report) throws {
        Kernels.threadCount = threads
        var generator = SeededGenerator(seed: seed &+ 1)
        let vocabulary = UInt64(model.config.vocabSize)
        let batch = try Batch(inputIDs: (0..<B).map { _ in (0..<T).map { _ in Int(generator.next() % vocabulary) } })
        let optimizer = AdamW(layout: model.layout, settings: .init(weightDecay: 0.01))
        let milliseconds = try medianMilliseconds(steps: steps) {
            let loss = try model.forward(batch, dropout: DropoutKey(seed: seed, step: 0, firstExample: 0))
            model.zeroGradients()
            model.backward(lossScale: 1 / Float(loss.count))
            let norm = Kernels.sumOfSquares(model.gradients.pointer, count: model.gradients.count).squareRoot()
            optimizer.update(parameters: model.parameters, gradients: model.gradients, learningRate: 5e-5,
                             gradientScale: clippingScale(norm: norm, maxNorm: 1))
        }
        let tokensPerSecond = Double(B * T) / (milliseconds / 1000)
        let config = model.config
        let dropout = [config.embdPdrop, config.attnPdrop, config.residPdrop].map { "\($0)" }.joined(separator: "/")
        report.line(what: "train_step", fields: [("model", .string(modelName)), ("dropout_embd_attn_resid", .string(dropout)),
                                                 ("products", .string(Kernels.bfloat16Products ? "bf16" : "fp32")),
                                                 ("gradient_checkpointing", .string("\(model.gradientCheckpointing)"))], batchSize: B, sequenceLength: T, threads: threads,
                    steps: steps, milliseconds: milliseconds, tokensPerSecond: tokensPerSecond,
                    gflops: model.config.trainingFlopsPerToken(sequenceLength: T) * tokensPerSecond / 1e9)
    }

    /// Every matrix multiplication of a training step of `config` at B·T rows, each in the three
    /// forms the model uses (the linear layers through Kernels.linearForward / linearBackward's
    /// products, the tied head as the model calls it).
    static func timeMatrixMultiplications(config: GPT2Config, batchSize B: Int, sequenceLength T: Int, threads: Int, steps: Int,
                                          seed: UInt64, report: Report) {
        Kernels.threadCount = threads
        let rows = B * T, C = config.nEmbd, V = config.vocabSize
        let layers = [(C, 3 * C), (C, C), (C, config.innerSize), (config.innerSize, C)]
        var products: [MatrixProduct] = []
        for (inFeatures, outFeatures) in layers {
            let shape = "\(inFeatures)x\(outFeatures)"
            products += [
                MatrixProduct(shape: shape, form: "forward", m: rows, n: outFeatures, k: inFeatures, bias: true),
                MatrixProduct(shape: shape, form: "input_gradient", m: rows, n: inFeatures, k: outFeatures, transposeB: true),
                MatrixProduct(shape: shape, form: "weight_gradient", m: inFeatures, n: outFeatures, k: rows, transposeA: true, accumulate: true),
            ]
        }
        let head = "\(C)x\(V)"
        products += [
            MatrixProduct(shape: head, form: "forward", m: rows, n: V, k: C, transposeB: true),
            MatrixProduct(shape: head, form: "input_gradient", m: rows, n: C, k: V),
            MatrixProduct(shape: head, form: "weight_gradient", m: V, n: C, k: rows, transposeA: true, accumulate: true),
        ]
        var generator = SeededGenerator(seed: seed)
        for product in products {
            let a = randomBuffer(count: product.m * product.k, &generator), b = randomBuffer(count: product.k * product.n, &generator)
            let bias = randomBuffer(count: product.n, &generator), c = FloatBuffer(count: product.m * product.n)
            let milliseconds = medianMilliseconds(steps: steps) {
                if product.bias {
                    Kernels.linearForward(out: c.pointer, inp: a.pointer, weight: b.pointer, bias: bias.pointer,
                                          rows: product.m, inFeatures: product.k, outFeatures: product.n)
                } else {
                    Kernels.matmul(c.pointer, a.pointer, b.pointer, m: product.m, n: product.n, k: product.k,
                                   transposeA: product.transposeA, transposeB: product.transposeB, accumulate: product.accumulate)
                }
            }
            let flops = 2 * Double(product.m) * Double(product.n) * Double(product.k)
            report.line(what: "matmul", fields: [("shape", .string(product.shape)), ("form", .string(product.form)),
                                                 ("m", .number(product.m)), ("n", .number(product.n)), ("k", .number(product.k))],
                        batchSize: B, sequenceLength: T, threads: threads, steps: steps, milliseconds: milliseconds,
                        tokensPerSecond: Double(rows) / (milliseconds / 1000), gflops: flops / (milliseconds / 1000) / 1e9)
        }
    }

    struct MatrixProduct {
        let shape, form: String
        let m, n, k: Int
        var transposeA = false, transposeB = false, accumulate = false, bias = false
    }

    private static func randomBuffer(count: Int, _ generator: inout SeededGenerator) -> FloatBuffer {
        let buffer = FloatBuffer(count: count)
        for i in 0..<count { buffer[i] = Float.random(in: -1...1, using: &generator) }
        return buffer
    }

    /// The median wall time of `steps` runs of `body`, after one untimed warm-up run.
    private static func medianMilliseconds(steps: Int, _ body: () throws -> Void) rethrows -> Double {
        var times: [Double] = []
        for step in 0...steps {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            if step > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6) }
        }
        return times.sorted()[times.count / 2]
    }

    /// Prints measurements as text or JSON lines; fraction_of_peak is against the measured peak of
    /// one core times the threads used.
    struct Report {
        enum Value { case string(String), number(Int), decimal(Double) }
        let console: Console
        let json: Bool
        let corePeak: Double

        func peak() {
            if json {
                console.print(#"{"what":"peak","num_threads":1,"gflops_per_second":\#(format(corePeak))}"#)
            } else {
                console.print("peak: \(format(corePeak)) GFLOP/s per core (measured fp32 FMA throughput)")
            }
        }

        func bandwidth(_ gigabytesPerSecond: Double, threads: Int) {
            if json {
                console.print(#"{"what":"memory_bandwidth","num_threads":\#(threads),"gb_per_second":\#(format(gigabytesPerSecond))}"#)
            } else {
                console.print("memory read bandwidth: \(format(gigabytesPerSecond)) GB/s with \(threads) thread(s) (1 GiB summed, best of 5)")
            }
        }

        /// `fields` go before the common ones and `extra` after them (in JSON; in text, fields
        /// form the label and extra trails the line).
        func line(what: String, fields: [(String, Value)], batchSize: Int, sequenceLength: Int, threads: Int, steps: Int,
                  milliseconds: Double, tokensPerSecond: Double, gflops: Double, extra: [(String, Value)] = []) {
            let fraction = gflops / (corePeak * Double(threads))
            if json {
                func members(_ pairs: [(String, Value)]) -> String {
                    pairs.map { name, value in
                        switch value {
                        case .string(let text): return #""\#(name)":"\#(text)","#
                        case .number(let number): return #""\#(name)":\#(number),"#
                        case .decimal(let number): return #""\#(name)":\#(String(format: "%.3f", number)),"#
                        }
                    }.joined()
                }
                let trailing = String(members(extra).dropLast())
                console.print(#"{"what":"\#(what)",\#(members(fields))"batch_size":\#(batchSize),"seq_len":\#(sequenceLength),"#
                    + #""num_threads":\#(threads),"steps":\#(steps),"ms_per_step":\#(format(milliseconds)),"#
                    + #""tokens_per_second":\#(format(tokensPerSecond)),"gflops_per_second":\#(format(gflops)),"#
                    + #""fraction_of_peak":\#(String(format: "%.3f", fraction))\#(trailing.isEmpty ? "" : "," + trailing)}"#)
            } else {
                func text(_ pairs: [(String, Value)]) -> [String] {
                    pairs.map { name, value in
                        switch value {
                        case .string(let text): return text
                        case .number(let number): return "\(name)=\(number)"
                        case .decimal(let number): return "\(name)=\(String(format: "%.3f", number))"
                        }
                    }
                }
                console.print("\(([what] + text(fields)).joined(separator: " ")) B=\(batchSize) T=\(sequenceLength) threads=\(threads): "
                    + "\(format(milliseconds)) ms (median of \(steps)), \(format(tokensPerSecond)) tokens/s, \(format(gflops)) GFLOP/s, "
                    + "\(String(format: "%.0f", 100 * fraction))% of peak" + text(extra).map { ", " + $0 }.joined())
            }
        }

        private func format(_ value: Double) -> String { String(format: "%.2f", value) }
    }
}
