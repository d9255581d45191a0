import Foundation
import GPT2
import Testing
import TestSupport
import Training

@Test func trainingLogsTheWarmupStableDecayRatesOfTransformers() throws {
    let fixture = try ScheduleFixture.load()
    let kwargs = #"{"num_decay_steps": 8, "decay_type": "linear", "min_lr_ratio": 0.1}"#
    let given = try JSONDecoder().decode([String: JSONValue].self, from: Data(kwargs.utf8))
    let reference = try #require(fixture.cases.first {
        $0.lr_scheduler_type == "warmup_stable_decay" && $0.lr_scheduler_kwargs == given && $0.warmup_steps == 4 && $0.total_steps == 20
    })
    let train = try sampleOfIdeas(from: 2500, count: 40, name: "train.txt")
    let output = try TestPaths.temporaryDirectory("schedule").appendingPathComponent("run")
    let result = runCLI(["train", "--model-config", try microConfig(), "--tokenizer", tokenizerDirectory, "--train-file", train,
                         "--validation-split", "0", "--output-dir", output.path, "--max-steps", "\(reference.total_steps)",
                         "--per-device-train-batch-size", "4", "--learning-rate", "\(fixture.learning_rate)",
                         "--warmup-steps", "\(reference.warmup_steps)", "--lr-scheduler-type", "warmup_stable_decay",
                         "--lr-scheduler-kwargs", kwargs, "--logging-steps", "1", "--eval-strategy", "no", "--block-size", "32"])
    #expect(result.status == 0, "\(result.error)")
    let rates = try stepRecords(output).map { try #require($0["learning_rate"]?.doubleValue) }
    try #require(rates.count == reference.learning_rates.count)
    for (step, (rate, expected)) in zip(rates, reference.learning_rates).enumerated() {
        #expect(abs(rate - expected) <= 1e-12 * abs(expected), "step \(step + 1): \(rate) vs transformers \(expected)")
    }
    // The checkpoint records the kwargs as given, under TrainingArguments' key.
    let saved = try JSONDecoder().decode([String: JSONValue].self, from: Data(contentsOf: URL(fileURLWithPath:
        Checkpoint.directory(in: output.path, step: reference.total_steps)).appendingPathComponent(Checkpoint.argumentsFileName)))
    #expect(saved["lr_scheduler_kwargs"] == .object(given))
}

@Test func scheduleFlagsRefuseWhatTransformersWouldInOneLine() throws {
    let train = try sampleOfIdeas(from: 2500, count: 10, name: "train.txt")
    let output = try TestPaths.temporaryDirectory("schedule-usage").appendingPathComponent("run")
    for (arguments, message) in [
        (["--lr-scheduler-kwargs", #"{"num_cycles": 2}"#], "--lr-scheduler-kwargs: linear has no setting 'num_cycles' (it takes none)"),
        (["--lr-scheduler-type", "cosine_with_restarts", "--lr-scheduler-kwargs", #"{"num_cycles": "two"}"#],
         #"--lr-scheduler-kwargs: num_cycles must be a number of 0 or more, got "two""#),
        (["--lr-scheduler-type", "cosine_with_min_lr"], "--lr-scheduler-kwargs: cosine_with_min_lr needs exactly one of min_lr and min_lr_rate"),
        (["--lr-scheduler-type", "polynomial", "--lr-scheduler-kwargs", #"{"lr_end": 0.01}"#],
         "--lr-scheduler-kwargs: lr_end (0.01) must be smaller than --learning-rate (5e-05)"),
        (["--lr-scheduler-type", "step"], "--lr-scheduler-type must be one of linear, cosine, cosine_with_restarts, polynomial, constant, "
            + "constant_with_warmup, inverse_sqrt, cosine_with_min_lr, warmup_stable_decay"),
    ] {
        let result = runCLI(["train", "--model-config", try microConfig(), "--tokenizer", tokenizerDirectory, "--train-file", train,
                             "--output-dir", output.path] + arguments)
        #expect(result.status == 2 && result.error.contains(message), "\(arguments): \(result.error)")
        #expect(!result.error.contains("\n"), "one line: \(result.error)")
        #expect(!FileManager.default.fileExists(atPath: output.path), "refused before the output dir is made")
    }
}
