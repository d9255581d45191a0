import Foundation
import GPT2

/// Times training steps of a randomly initialised model on random tokens.
enum BenchCommand: Command {
    static let spec = CommandSpec(
        name: "bench",
        summary: "Time training steps (forward and backward) of a random model: ms/step, tokens/s, GFLOP/s. Use a release build.",
        flags: [
            InitCommand.modelConfigFlag,
            .option("--batch-size", "B", "sequences per step", default: "4"),
            .option("--seq-len", "T", "tokens per sequence", default: "64"),
            .option("--steps", "N", "timed steps (after one untimed warm-up step)", default: "5"),
            .option("--seed", "N", "seed for the weights and tokens", default: "1"),
            .toggle("--json", "print one JSON object per configuration"),
        ])

    static func run(_ arguments: ParsedArguments, console: Console) throws {
        let config = try InitCommand.resolveConfig(arguments)
        let B = try arguments.int("--batch-size")!, T = try arguments.int("--seq-len")!, steps = try arguments.int("--steps")!
        let seed = UInt64(try arguments.int("--seed")!)
        guard B > 0, T > 1, T <= config.nPositions, steps > 0 else {
            throw CLIError.usage(command: spec.name, message: "need --batch-size > 0, 1 < --seq-len <= n_positions (\(config.nPositions)) and --steps > 0")
        }
        let model = try GPT2Model.randomlyInitialized(config: config, seed: seed)
        var generator = SeededGenerator(seed: seed &+ 1)
        let tokens = (0..<B).map { _ in (0..<T).map { _ in Int(generator.next() % UInt64(config.vocabSize)) } }
        let batch = try Batch(inputIDs: tokens)
        var times: [Double] = []
        for step in 0...steps {
            let start = DispatchTime.now().uptimeNanoseconds
            let loss = try model.forward(batch)
            model.zeroGradients()
            model.backward(lossScale: 1 / Float(loss.count))
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
            if step > 0 { times.append(elapsed) }
        }
        let median = times.sorted()[times.count / 2]
        let tokensPerSecond = Double(B * T) / (median / 1000)
        let gflops = config.trainingFlopsPerToken(sequenceLength: T) * tokensPerSecond / 1e9
        let what = "train_step"
        if arguments.isSet("--json") {
            console.print(#"{"what":"\#(what)","model":"\#(try arguments.required("--model-config"))","batch_size":\#(B),"seq_len":\#(T),"num_threads":1,"#
                + #""steps":\#(steps),"ms_per_step":\#(format(median)),"tokens_per_second":\#(format(tokensPerSecond)),"gflops_per_second":\#(format(gflops))}"#)
        } else {
            console.print("\(what) B=\(B) T=\(T) threads=1: \(format(median)) ms/step (median of \(steps)), "
                + "\(format(tokensPerSecond)) tokens/s, \(format(gflops)) GFLOP/s")
        }
    }

    private static func format(_ value: Double) -> String { String(format: "%.2f", value) }
}
