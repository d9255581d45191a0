import CLI
import Foundation
import GPT2
import Testing
import TestSupport
import Training

/// Input past what the program can count or the machine can hold, a model that computes NaN, and
/// settings AdamW cannot use: each is refused with one line and a non-zero exit, never a trap, and
/// nothing the user had is overwritten.
@Suite struct LimitsTests {
    func expectRefusal(_ arguments: [String], status: Int32, _ messages: String..., sourceLocation: SourceLocation = #_sourceLocation) {
        let result = runCLI(arguments)
        #expect(result.status == status, "\(arguments): \(result.error)", sourceLocation: sourceLocation)
        for message in messages {
            #expect(result.error.contains(message), "expected '\(message)' in: \(result.error)", sourceLocation: sourceLocation)
        }
        #expect(!result.error.contains("\n"), "one line: \(result.error)", sourceLocation: sourceLocation)
    }

    func writeConfig(_ json: String, in directory: URL) throws -> String {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("config.json").path
        try Data(json.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func initWritesOnlyIntoANewOrEmptyDirectory() throws {
        let root = try TestPaths.temporaryDirectory("init")
        let config = try microConfig()
        let trained = root.appendingPathComponent("trained")
        #expect(runCLI(["init", "--model-config", config, "--output-dir", trained.path, "--seed", "1"]).status == 0)
        let weights = trained.appendingPathComponent("model.safetensors")
        let before = try Data(contentsOf: weights)
        expectRefusal(["init", "--model-config", config, "--output-dir", trained.path, "--seed", "2"], status: 2,
                      "\(trained.path): --output-dir is not empty")
        #expect(try Data(contentsOf: weights) == before, "the model in it is untouched")

        let notes = root.appendingPathComponent("notes")
        try FileManager.default.createDirectory(at: notes, withIntermediateDirectories: true)
        try "mine".write(to: notes.appendingPathComponent("todo.txt"), atomically: true, encoding: .utf8)
        expectRefusal(["init", "--model-config", config, "--output-dir", notes.path], status: 2, "\(notes.path): --output-dir is not empty (it holds todo.txt)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: notes.path) == ["todo.txt"])

        let file = root.appendingPathComponent("a-file")
        try "mine".write(to: file, atomically: true, encoding: .utf8)
        expectRefusal(["init", "--model-config", config, "--output-dir", file.path], status: 2, "\(file.path): --output-dir is a file")
        #expect(try String(contentsOf: file, encoding: .utf8) == "mine")

        let empty = root.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        #expect(runCLI(["init", "--model-config", config, "--output-dir", empty.path]).status == 0, "an empty directory is fine")
    }

    /// Sizes whose buffers no machine holds: refused from the config alone, before any allocation
    /// (the layout of 10^9 layers alone would abort the process).
    @Test(arguments: [(#"{"n_layer": 1000000000, "n_embd": 64, "n_head": 4}"#, "TiB for 49984003282112 parameters, with their gradients"),
                      (#"{"n_embd": 1099511627776, "n_head": 16}"#, "needs more than 8.0 EiB for more parameters than a 64-bit count holds")])
    func aModelTooLargeForThisMachineIsRefusedByEveryCommand(json: String, figure: String) throws {
        let root = try TestPaths.temporaryDirectory("huge")
        let model = root.appendingPathComponent("model")
        let config = try writeConfig(json, in: model)
        let data = try sampleOfIdeas(from: 0, count: 4, name: "train.txt")
        let memory = "this machine has \(PhysicalMemory.format(PhysicalMemory.bytes)) of memory"
        for arguments in [["info", model.path],
                          ["init", "--model-config", config, "--output-dir", root.appendingPathComponent("init").path],
                          ["generate", "--model-name-or-path", model.path, "--prompt-ids", "1", "--json"],
                          ["train", "--model-config", config, "--tokenizer", tokenizerDirectory, "--train-file", data,
                           "--output-dir", root.appendingPathComponent("run1").path],
                          ["train", "--model-name-or-path", model.path, "--tokenizer", tokenizerDirectory, "--train-file", data,
                           "--output-dir", root.appendingPathComponent("run2").path],
                          ["evaluate", "--model-name-or-path", model.path, "--tokenizer", tokenizerDirectory, "--validation-file", data]] {
            expectRefusal(arguments, status: 1, "\(config): needs", figure, memory)
        }
    }

    /// A model whose parameters and gradients fit but whose training state (with AdamW's two
    /// moments) does not: `train` refuses before it allocates anything.
    @Test func trainingStateTooLargeForThisMachineIsRefusedBeforeAnyRankStarts() throws {
        // 49984 parameters per layer of width 64; the layers make up two thirds of memory as
        // parameters and gradients, so four copies need 4/3 of it.
        let layers = PhysicalMemory.bytes / 12 / 49984
        let root = try TestPaths.temporaryDirectory("training-state")
        let model = root.appendingPathComponent("model")
        let config = try writeConfig(#"{"n_layer": \#(layers), "n_embd": 64, "n_head": 4, "n_positions": 64}"#, in: model)
        let data = try sampleOfIdeas(from: 0, count: 4, name: "train.txt")
        for source in [["--model-config", config], ["--model-name-or-path", model.path]] {
            expectRefusal(["train"] + source + ["--tokenizer", tokenizerDirectory, "--train-file", data, "--output-dir", root.appendingPathComponent("run").path],
                          status: 1, "\(config): needs", "parameters, with their gradients and AdamW's two moments", "this machine has")
        }
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("run").path))
    }

    @Test func generateRefusesLogitsThatAreNotFinite() throws {
        let (model, _) = try GPT2Model.load(directory: tinyModel)
        model.parameters[try #require(model.layout.tensor(named: "ln_f.weight")).offset] = .nan
        let directory = try TestPaths.temporaryDirectory("nan-model")
        try model.save(directory: directory.path)
        for mode in [["--greedy"], ["--top-k", "0"], []] {
            expectRefusal(["generate", "--model-name-or-path", directory.path, "--prompt-ids", "5,6", "--json"] + mode, status: 1,
                          "cannot choose the token at position 2: the model's logits are not finite (NaN or infinity)")
        }
    }

    @Test func countFlagsAreBoundedWithOneLineUsageErrors() throws {
        let huge = "9223372036854775807"
        let train = ["train", "--model-config", "tiny", "--train-file", "unused.txt", "--output-dir", "unused"]
        let generate = ["generate", "--model-name-or-path", tinyModel, "--prompt-ids", "1", "--json"]
        let cases: [([String], String)] = [
            (train + ["--per-device-train-batch-size", huge], "--per-device-train-batch-size must be at most 65536, got \(huge)"),
            (train + ["--gradient-accumulation-steps", huge], "--gradient-accumulation-steps must be at most 65536"),
            (train + ["--per-device-train-batch-size", "4096", "--gradient-accumulation-steps", "4096"],
             "--per-device-train-batch-size x --gradient-accumulation-steps must be at most 1048576 examples per rank and step, got 4096 x 4096"),
            (train + ["--num-train-epochs", "1e300"], "--num-train-epochs must be at most 1000000, got 1e300"),
            (train + ["--max-steps", huge], "--max-steps must be at most 1000000000"),
            (train + ["--save-steps", huge], "--save-steps must be at most 1000000000"),
            (train + ["--block-size", huge], "--block-size must be at most 1048576"),
            (train + ["--allreduce-bucket-mb", "1e300"], "--allreduce-bucket-mb must be at most 65536"),
            (train + ["--num-threads", huge], "--num-threads must be at most 1024"),
            (["evaluate", "--model-config", "tiny", "--validation-file", "unused.txt", "--per-device-eval-batch-size", huge],
             "--per-device-eval-batch-size must be at most 65536"),
            (generate + ["--max-new-tokens", huge], "--max-new-tokens must be at most 1048576, got \(huge)"),
            (generate + ["--max-length", huge], "--max-length must be at most 1048576"),
            (generate + ["--min-length", huge], "--min-length must be at most 1048576"),
            (generate + ["--num-return-sequences", huge], "--num-return-sequences must be at most 65536"),
            (generate + ["--batch", huge], "--batch must be at most 65536"),
            (["init", "--output-dir", "unused", "--vocab-size", huge], "--vocab-size must be at most 2147483647"),
            (["bench", "--generate", "--batch-size", huge], "--batch-size must be at most 65536"),
            (["bench", "--seed", "-1"], "--seed must be a non-negative integer"),
            (["bench", "--allreduce-mb", "-1"], "--allreduce-mb must be positive"),
        ]
        for (arguments, message) in cases { expectRefusal(arguments, status: 2, message) }
        #expect(runCLI(["train", "--help"]).output.contains("examples per micro-batch on each rank (default: 8) (at most 65536)"))
    }

    /// Epochs whose steps pass an Int: the conversion was undefined and came out as 1 step.
    @Test func totalStepsOfHugeEpochCountsDoNotWrapToOneStep() {
        var settings = TrainingArguments(outputDir: "unused", trainFile: "unused")
        settings.numTrainEpochs = 2.5
        #expect(settings.totalSteps(stepsPerEpoch: 4) == 10)
        settings.numTrainEpochs = 1e300
        #expect(settings.totalSteps(stepsPerEpoch: 4) == Int.max)
    }

    @Test func adamWSettingsOutsideTorchsRangesAreRefused() throws {
        let train = ["train", "--model-config", "tiny", "--train-file", "unused.txt", "--output-dir", "unused"]
        let cases: [([String], String)] = [
            (["--learning-rate", "-1"], "invalid --learning-rate -1.0: AdamW needs lr >= 0"),
            (["--adam-epsilon", "-1e-8"], "invalid --adam-epsilon -1e-08: AdamW needs eps >= 0"),
            (["--adam-beta1", "1.5"], "invalid --adam-beta1 1.5: AdamW needs 0 <= beta1 < 1"),
            (["--adam-beta1", "-0.1"], "invalid --adam-beta1 -0.1: AdamW needs 0 <= beta1 < 1"),
            (["--adam-beta2", "1"], "invalid --adam-beta2 1.0: AdamW needs 0 <= beta2 < 1"),
            (["--weight-decay", "-1"], "invalid --weight-decay -1.0: AdamW needs weight_decay >= 0"),
        ]
        for (flags, message) in cases { expectRefusal(train + flags, status: 2, message) }
        // The edges torch accepts.
        try AdamW.Settings(beta1: 0, beta2: 0, epsilon: 0, weightDecay: 0).validate(learningRate: 0)
    }
}
