import CLI
import Foundation
import GPT2
import Testing
import TestSupport
import Training

/// `Trainer`'s habits: the best checkpoint, early stopping, evaluation on start, save strategies,
/// its trainer_state.json, quick runs on the first examples.
struct BestModelTests {
    let config: String
    let train: String
    let validation: String

    init() throws {
        config = try microConfig()
        // Few examples and a high learning rate: the model overfits and its eval loss turns upwards.
        train = try sampleOfIdeas(from: 4700, count: 4, name: "train.txt")
        validation = try sampleOfIdeas(from: 4800, count: 24, name: "validation.txt")
    }

    func run(_ output: URL, steps: Int = 60, _ extra: [String]) -> (status: Int32, output: String, error: String) {
        runCLI(["train", "--model-config", config, "--tokenizer", tokenizerDirectory, "--train-file", train, "--validation-file", validation,
                "--output-dir", output.path, "--max-steps", "\(steps)", "--per-device-train-batch-size", "2", "--learning-rate", "3e-2",
                "--logging-steps", "5", "--eval-steps", "5", "--block-size", "32", "--seed", "4"] + extra)
    }

    func evaluations(_ output: URL) throws -> [(step: Int, loss: Double)] {
        try metrics(output).compactMap { record in
            guard let loss = record["eval_loss"]?.doubleValue, let step = record["step"]?.doubleValue else { return nil }
            return (Int(step), loss)
        }
    }

    func trainerState(_ checkpoint: String) throws -> [String: JSONValue] {
        try JSONDecoder().decode([String: JSONValue].self, from: Data(contentsOf: URL(fileURLWithPath: checkpoint).appendingPathComponent("trainer_state.json")))
    }

    @Test func theBestCheckpointIsKeptAndBecomesTheFinalModel() throws {
        let output = try TestPaths.temporaryDirectory("best").appendingPathComponent("run")
        let result = run(output, ["--save-strategy", "best", "--load-best-model-at-end", "--save-total-limit", "1"])
        try #require(result.status == 0, "\(result.error)")
        let evals = try evaluations(output)
        let best = try #require(evals.min { $0.loss < $1.loss })
        try #require(best.step < evals.last!.step, "the eval loss rises after step \(best.step): \(evals)")
        let bestCheckpoint = Checkpoint.directory(in: output.path, step: best.step)
        #expect(Checkpoint.list(in: output.path).map(\.step) == [best.step, 60], "the best and the last: \(Checkpoint.list(in: output.path))")
        #expect(result.error.contains("loaded the best model from \(bestCheckpoint) (eval_loss \(Float(best.loss)) at step \(best.step))"), "\(result.error)")
        #expect(try Data(contentsOf: output.appendingPathComponent("model.safetensors")) == Data(contentsOf: URL(fileURLWithPath: bestCheckpoint).appendingPathComponent("model.safetensors")))
        let state = try trainerState(Checkpoint.directory(in: output.path, step: 60))
        #expect(state["best_global_step"] == .number(Double(best.step)) && state["best_model_checkpoint"] == .string(bestCheckpoint))
        #expect(state["best_metric"]?.doubleValue.map { Float($0) } == Float(best.loss))
        #expect(result.output.contains("best_eval_loss: \(Float(best.loss))"))
    }

    @Test func earlyStoppingEndsLikeANormalRunAndStaysStopped() throws {
        let output = try TestPaths.temporaryDirectory("early").appendingPathComponent("run")
        let result = run(output, ["--early-stopping-patience", "2", "--save-steps", "5"])
        try #require(result.status == 0, "\(result.error)")
        let evals = try evaluations(output)
        let stop = try #require(try metrics(output).first { $0["early_stopping"] != nil }?["step"]?.doubleValue).rounded()
        let best = try #require(evals.filter { Double($0.step) <= stop }.min { $0.loss < $1.loss })
        #expect(Double(best.step) + 10 == stop, "two evaluations without improvement after the best at \(best.step): stopped at \(stop), \(evals)")
        #expect(try stepRecords(output).last?["step"]?.doubleValue == stop, "no step after the stop")
        #expect(try metrics(output).last?["train_loss"] != nil && Checkpoint.list(in: output.path).last?.step == Int(stop))
        #expect(result.error.contains("early stopping at step \(Int(stop))"))
        let state = try trainerState(Checkpoint.directory(in: output.path, step: Int(stop)))
        guard case let .object(callbacks)? = state["stateful_callbacks"], case let .object(control)? = callbacks["TrainerControl"],
              case let .object(args)? = control["args"] else { Issue.record("no TrainerControl in \(state)"); return }
        #expect(args["should_training_stop"] == .bool(true))
        // Resumed, the stopped run trains no further.
        let resumed = run(output, ["--early-stopping-patience", "2", "--save-steps", "5", "--resume-from-checkpoint", "auto"])
        #expect(resumed.status == 0 && resumed.error.contains("at step \(Int(stop))"), "\(resumed.error)")
        #expect(try stepRecords(output).last?["step"]?.doubleValue == stop)
    }

    @Test func theMetricItsDirectionAndTheThresholdDecideWhatIsBest() throws {
        let root = try TestPaths.temporaryDirectory("metric")
        let byLoss = root.appendingPathComponent("loss"), byPerplexity = root.appendingPathComponent("perplexity")
        let greater = root.appendingPathComponent("greater"), threshold = root.appendingPathComponent("threshold")
        try #require(run(byLoss, steps: 30, []).status == 0)
        try #require(run(byPerplexity, steps: 30, ["--metric-for-best-model", "eval_perplexity"]).status == 0)
        try #require(run(greater, steps: 30, ["--greater-is-better"]).status == 0)
        let evals = try evaluations(byLoss)
        let lowest = try #require(evals.min { $0.loss < $1.loss }), highest = try #require(evals.max { $0.loss < $1.loss })
        let last = Checkpoint.directory(in: byLoss.path, step: 30)
        #expect(try trainerState(last)["best_global_step"] == .number(Double(lowest.step)))
        let perplexityState = try trainerState(Checkpoint.directory(in: byPerplexity.path, step: 30))
        #expect(perplexityState["best_global_step"] == .number(Double(lowest.step)))
        #expect(perplexityState["best_metric"]?.doubleValue.map { abs($0 - exp(lowest.loss)) / exp(lowest.loss) < 1e-6 } == true, "\(perplexityState)")
        #expect(try trainerState(Checkpoint.directory(in: greater.path, step: 30))["best_global_step"] == .number(Double(highest.step)))
        // No evaluation improves by more than 100: patience 2 runs out two evaluations after the first.
        let result = run(threshold, ["--early-stopping-patience", "2", "--early-stopping-threshold", "100"])
        #expect(result.status == 0 && result.error.contains("early stopping at step 15"), "\(result.error)")
    }

    @Test func evaluationOnStartAndSaveStrategies() throws {
        let root = try TestPaths.temporaryDirectory("strategies")
        let start = root.appendingPathComponent("start")
        #expect(run(start, steps: 4, ["--eval-on-start", "--save-strategy", "no"]).status == 0)
        #expect(try evaluations(start).first?.step == 0)
        #expect(Checkpoint.list(in: start.path).isEmpty && FileManager.default.fileExists(atPath: start.appendingPathComponent("model.safetensors").path))
        // 4 examples in batches of 2: an epoch is 2 steps.
        let epochs = root.appendingPathComponent("epochs")
        #expect(run(epochs, steps: 7, ["--save-strategy", "epoch"]).status == 0)
        #expect(Checkpoint.list(in: epochs.path).map(\.step) == [2, 4, 6, 7])
    }

    @Test func trainerStateIsInTrainersLayoutWithOurStateBeside() throws {
        let output = try TestPaths.temporaryDirectory("layout").appendingPathComponent("run")
        #expect(run(output, steps: 5, []).status == 0)
        let checkpoint = Checkpoint.directory(in: output.path, step: 5)
        let state = try trainerState(checkpoint)
        // Every field of transformers' TrainerState (5.x), and nothing else: its load_from_json takes them all.
        #expect(Set(state.keys) == ["best_global_step", "best_metric", "best_model_checkpoint", "epoch", "eval_steps", "global_step",
                                    "is_hyper_param_search", "is_local_process_zero", "is_world_process_zero", "log_history", "logging_steps",
                                    "max_steps", "num_input_tokens_seen", "num_train_epochs", "save_steps", "stateful_callbacks", "total_flos",
                                    "train_batch_size", "trial_name", "trial_params"])
        #expect(state["global_step"] == .number(5) && state["max_steps"] == .number(5) && state["train_batch_size"] == .number(2))
        #expect(state["num_train_epochs"] == .number(3), "5 steps of 2 per epoch")
        let ours = try JSONDecoder().decode([String: JSONValue].self, from: Data(contentsOf: URL(fileURLWithPath: checkpoint).appendingPathComponent(Checkpoint.runStateFileName)))
        #expect(ours["global_batch_size"] == .number(2) && ours["tokenizer_fingerprint"] != nil)
        // The final directory has the generation config save_pretrained writes, with Trainer's eos: the new one and the old.
        let generation = try JSONDecoder().decode([String: JSONValue].self, from: Data(contentsOf: output.appendingPathComponent("generation_config.json")))
        #expect(generation["eos_token_id"] == .array([.number(50257), .number(50256)]) && generation["pad_token_id"] == .number(50258), "\(generation)")
    }

    @Test func quickRunsTakeTheFirstExamples() throws {
        let output = try TestPaths.temporaryDirectory("samples").appendingPathComponent("run")
        let result = run(output, steps: 2, ["--max-train-samples", "3", "--max-eval-samples", "3"])
        #expect(result.status == 0 && result.error.contains("training 3 examples"), "\(result.error)")
        let whole = try TestPaths.temporaryDirectory("samples-whole").appendingPathComponent("run")
        #expect(run(whole, steps: 2, []).status == 0)
        let tokens = { (directory: URL) in try metrics(directory).compactMap { $0["eval_tokens"]?.doubleValue }.last }
        #expect(try tokens(output)! < tokens(whole)!)
    }

    @Test func strategiesThatCannotWorkTogetherAreUsageErrors() throws {
        let output = try TestPaths.temporaryDirectory("mismatch").appendingPathComponent("run")
        let cases: [([String], String)] = [
            (["--load-best-model-at-end", "--save-strategy", "epoch"], "--load-best-model-at-end requires the save and eval strategy to match, but found --eval-strategy steps and --save-strategy epoch"),
            (["--load-best-model-at-end", "--save-steps", "7"], "--save-steps to be a round multiple of --eval-steps, but found 7 and 5"),
            (["--early-stopping-patience", "2", "--eval-strategy", "no"], "--early-stopping-patience needs evaluations"),
            (["--metric-for-best-model", "accuracy"], "--metric-for-best-model must be loss or perplexity"),
            (["--save-strategy", "sometimes"], "--save-strategy must be no, steps, epoch or best"),
        ]
        for (extra, message) in cases {
            let result = run(output, extra)
            #expect(result.status == 2 && result.error.contains(message), "\(extra): \(result.error)")
        }
    }
}
