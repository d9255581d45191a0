import Foundation
import GPT2
import Kernels
import TestSupport
import Testing

/// `--bf16` runs in the real executable only: it is a process-wide setting, and these tests share
/// one process with others that expect fp32 products.
private let bf16Reason: Comment = "skipped: this CPU has no bfloat16 kernel (it has \(CPU.current.featureNames.joined(separator: ", ")))"

/// llm.c's tolerance for its bf16 build: within 0.05 of the fp32 loss at every one of the
/// fixture's 20 steps.
@Test(.enabled(if: CPU.current.avx512BF16, bf16Reason))
func bf16StaysWithinLlmCsToleranceOfTheFP32Trajectory() throws {
    let fixture = try TrajectoryFixture.load()
    var losses: [[Double]] = []
    for extra in [[], ["--bf16"]] {
        let directory = try TestPaths.temporaryDirectory("bf16-trajectory")
        let output = directory.appendingPathComponent("run")
        let result = try runProcess(TestPaths.executable, try fixture.trainArguments(directory: directory, output: output) + extra)
        try #require(result.status == 0, "\(extra): \(result.error)")
        losses.append(try stepRecords(output).map { try #require($0["loss"]?.doubleValue) })
        let saved = output.appendingPathComponent("checkpoint-\(fixture.steps.count)/training_args.json")
        #expect(try String(contentsOf: saved, encoding: .utf8)
                    .contains(#""bf16" : \#(extra.isEmpty ? "false" : "true")"#))
    }
    try #require(losses[0].count == fixture.steps.count && losses[1].count == fixture.steps.count)
    for (step, (fp32, bf16)) in zip(losses[0], losses[1]).enumerated() {
        #expect(abs(fp32 - bf16) < 0.05, "step \(step + 1): fp32 \(fp32), bf16 \(bf16)")
    }
    #expect(losses[0] != losses[1], "the bf16 run rounds its products")
}

/// A short from-scratch run on startup ideas ends with an eval loss within 1% of the fp32 run's.
@Test(.enabled(if: CPU.current.avx512BF16, bf16Reason))
func bf16FromScratchReachesTheFP32EvalLoss() throws {
    let train = try sampleOfIdeas(from: 0, count: 600, name: "bf16-train.txt")
    let validation = try sampleOfIdeas(from: 2000, count: 100, name: "bf16-validation.txt")
    let config = try microConfig()
    var evalLosses: [Double] = []
    for extra in [[], ["--bf16"]] {
        let output = try TestPaths.temporaryDirectory("bf16-scratch").appendingPathComponent("run")
        let result = try runProcess(TestPaths.executable, ["train", "--model-config", config, "--tokenizer", tokenizerDirectory,
                                                           "--train-file", train, "--validation-file", validation, "--output-dir", output.path,
                                                           "--max-steps", "60", "--per-device-train-batch-size", "16", "--learning-rate", "5e-3",
                                                           "--warmup-steps", "6", "--weight-decay", "0.01", "--logging-steps", "20",
                                                           "--eval-steps", "60", "--save-strategy", "no", "--seed", "5"] + extra)
        try #require(result.status == 0, "\(extra): \(result.error)")
        evalLosses.append(try #require(try metrics(output).compactMap { $0["eval_loss"]?.doubleValue }.last))
    }
    #expect(abs(evalLosses[1] - evalLosses[0]) / evalLosses[0] < 0.01, "eval loss fp32 \(evalLosses[0]), bf16 \(evalLosses[1])")
}

/// Without a bfloat16 kernel, --bf16 is a one-line error that says so.
@Test(.enabled(if: !CPU.current.avx512BF16, "skipped: this CPU has a bfloat16 kernel, so --bf16 runs"))
func bf16WithoutAKernelIsAClearError() throws {
    let result = try runProcess(TestPaths.executable, ["bench", "--bf16", "--model-config", "tiny", "--steps", "1"])
    #expect(result.status == 2 && result.error.contains("--bf16: this CPU") && result.error.split(separator: "\n").count == 1, "\(result.error)")
}
