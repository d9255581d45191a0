import Foundation
import Testing
import TestSupport
import Training

#if canImport(Glibc)
import Glibc
#endif

/// The scalars TensorBoardCallback writes for metrics.jsonl's records, as (tag, step, value).
private func expectedScalars(_ records: [MetricsRecord]) -> [(tag: String, step: Int, value: Float)] {
    records.filter { $0["samples"] == nil }.flatMap { record in
        let step = Int(record["step"]?.doubleValue ?? -1)
        return TensorBoardWriter.scalars(record).map { ($0.tag, step, $0.value) }
    }
}

private func compare(_ shown: [(tag: String, step: Int, value: Float)], _ expected: [(tag: String, step: Int, value: Float)]) {
    #expect(shown.count == expected.count, "\(shown.count) scalars against \(expected.count)")
    for (ours, theirs) in zip(shown, expected) {
        #expect(ours.tag == theirs.tag && ours.step == theirs.step && ours.value == theirs.value, "\(ours) vs \(theirs)")
    }
}

private func eventFiles(_ directory: URL) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix("events.out.tfevents.") }.sorted()
}

private func manifest(_ output: URL) throws -> [String] {
    struct Manifest: Decodable { let files: [String] }
    return try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: output.appendingPathComponent(RunDirectory.manifestName))).files
}

@Test func reportToTensorBoardWritesTrainersTagsForEveryLoggedRecord() throws {
    let train = try sampleOfIdeas(from: 3000, count: 80, name: "train.txt")
    let output = try TestPaths.temporaryDirectory("tensorboard").appendingPathComponent("run")
    let base = ["train", "--model-config", try microConfig(), "--tokenizer", tokenizerDirectory, "--train-file", train,
                "--validation-split", "0.2", "--per-device-train-batch-size", "4", "--learning-rate", "3e-3", "--block-size", "32"]
    let arguments = base + ["--output-dir", output.path, "--max-steps", "12", "--logging-steps", "2", "--eval-steps", "4", "--report-to", "tensorboard"]
    let result = runCLI(arguments)
    #expect(result.status == 0, "\(result.error)")

    // OUTPUT/runs/DATE_HOST, as Trainer's default_logdir(), holding one file named as TensorBoard's writer names it.
    let runs = output.appendingPathComponent("runs")
    let folders = try FileManager.default.contentsOfDirectory(atPath: runs.path)
    try #require(folders.count == 1)
    var host = [CChar](repeating: 0, count: 256)
    gethostname(&host, host.count - 1)
    let hostName = NSRegularExpression.escapedPattern(for: String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    #expect(folders[0].wholeMatch(of: try Regex("(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[0-9]{2}_[0-9]{2}-[0-9]{2}-[0-9]{2}_\(hostName)")) != nil, "\(folders[0])")
    let logs = runs.appendingPathComponent(folders[0])
    let files = try eventFiles(logs)
    try #require(files.count == 1)
    #expect(files[0].wholeMatch(of: try Regex("events\\.out\\.tfevents\\.[0-9]{10}\\.\(hostName)\\.\(getpid())\\.[0-9]+")) != nil, "\(files[0])")
    #expect(result.error.contains("tensorboard: writing events to \(logs.appendingPathComponent(files[0]).path)"), "\(result.error)")
    #expect(try manifest(output).contains("runs"), "the runs folder is recorded as this program's")

    let file = try TensorBoardEventFile(path: logs.appendingPathComponent(files[0]).path)
    #expect(file.events.first?.fileVersion == "brain.Event:2")
    let shown = try TensorBoardEventFile.shownScalars(inFolder: logs)
    compare(shown, expectedScalars(try metrics(output)))
    let tags = Set(shown.map(\.tag))
    for tag in ["train/loss", "train/learning_rate", "train/grad_norm", "train/epoch", "eval/loss", "eval/perplexity",
                "train/train_loss", "train/train_runtime"] {
        #expect(tags.contains(tag), "\(tag) in \(tags.sorted())")
    }
    #expect(shown.filter { $0.tag == "train/loss" }.map(\.step) == [2, 4, 6, 8, 10, 12])
    #expect(shown.filter { $0.tag == "eval/loss" }.map(\.step) == [4, 8, 12])

    // --overwrite-output-dir removes the runs folder with the rest of the earlier run.
    let afresh = runCLI(arguments + ["--overwrite-output-dir"])
    #expect(afresh.status == 0, "\(afresh.error)")
    let newFiles = try FileManager.default.contentsOfDirectory(atPath: runs.path).flatMap { try eventFiles(runs.appendingPathComponent($0)) }
    #expect(newFiles.count == 1 && !newFiles.contains(files[0]), "\(newFiles)")

    // Without --report-to there are no event files.
    let plain = try TestPaths.temporaryDirectory("tensorboard-none").appendingPathComponent("run")
    let none = runCLI(base + ["--output-dir", plain.path, "--max-steps", "2"])
    #expect(none.status == 0, "\(none.error)")
    #expect(!FileManager.default.fileExists(atPath: plain.appendingPathComponent("runs").path))
}

@Test func aResumedRunAppendsASecondEventFileThatTensorBoardPurgesFrom() throws {
    let train = try sampleOfIdeas(from: 3200, count: 60, name: "train.txt")
    let output = try TestPaths.temporaryDirectory("tensorboard-resume").appendingPathComponent("run")
    let arguments = ["train", "--model-config", try microConfig(), "--tokenizer", tokenizerDirectory, "--train-file", train,
                     "--validation-split", "0.2", "--output-dir", output.path, "--max-steps", "12", "--per-device-train-batch-size", "4",
                     "--learning-rate", "3e-3", "--logging-steps", "1", "--eval-steps", "3", "--save-steps", "6", "--block-size", "32",
                     "--report-to", "all"]
    #expect(runCLI(arguments).status == 0)
    // As if the run had been killed after step 12 but before its final checkpoint: it resumes from step 6.
    try FileManager.default.removeItem(atPath: Checkpoint.directory(in: output.path, step: 12))
    let resumed = runCLI(arguments + ["--resume-from-checkpoint", "latest"])
    #expect(resumed.status == 0 && resumed.error.contains("at step 6"), "\(resumed.error)")

    let runs = output.appendingPathComponent("runs")
    let folders = try FileManager.default.contentsOfDirectory(atPath: runs.path)
    try #require(folders.count == 1, "the resumed run continues in the same folder: \(folders)")
    let logs = runs.appendingPathComponent(folders[0])
    let files = try eventFiles(logs)
    try #require(files.count == 2, "\(files)")
    let second = try TensorBoardEventFile(path: logs.appendingPathComponent(files[1]).path)
    #expect(second.events.first?.fileVersion == "brain.Event:2")
    #expect(second.events.dropFirst().first.map { $0.sessionStatus == 1 && $0.step == 7 } == true, "a restart at step 7 comes first")
    #expect(try TensorBoardEventFile(path: logs.appendingPathComponent(files[0]).path).events.contains { $0.step == 12 && !$0.scalars.isEmpty })
    // What TensorBoard shows, the first run's steps 7 to 12 purged, is metrics.jsonl, which the resume cut back to step 6 alike.
    compare(try TensorBoardEventFile.shownScalars(inFolder: logs), expectedScalars(try metrics(output)))
}

@Test func aLoggingDirOutsideTheOutputDirIsTheUsersAndOneInsideIsTheRuns() throws {
    let root = try TestPaths.temporaryDirectory("tensorboard-dirs")
    let train = try sampleOfIdeas(from: 3400, count: 20, name: "train.txt"), config = try microConfig()
    func run(_ output: URL, _ extra: [String]) -> (status: Int32, output: String, error: String) {
        runCLI(["train", "--model-config", config, "--tokenizer", tokenizerDirectory, "--train-file", train,
                "--validation-split", "0", "--output-dir", output.path, "--max-steps", "2", "--logging-steps", "1", "--eval-strategy", "no",
                "--block-size", "32", "--report-to", "tensorboard"] + extra)
    }
    let outside = root.appendingPathComponent("tb"), output = root.appendingPathComponent("run")
    #expect(run(output, ["--logging-dir", outside.path]).status == 0)
    #expect(run(output, ["--logging-dir", outside.path, "--overwrite-output-dir"]).status == 0)
    #expect(try eventFiles(outside).count == 2, "the user's folder keeps both runs' files")
    #expect(!FileManager.default.fileExists(atPath: output.appendingPathComponent("runs").path))

    let inside = output.appendingPathComponent("logs/tensorboard")
    #expect(run(output, ["--logging-dir", inside.path, "--overwrite-output-dir"]).status == 0)
    #expect(try eventFiles(inside).count == 1 && manifest(output).contains("logs"))
    #expect(run(output, ["--overwrite-output-dir"]).status == 0)
    #expect(!FileManager.default.fileExists(atPath: output.appendingPathComponent("logs").path), "removed as the earlier run's")

    // One-line errors naming the flag.
    let bad = runCLI(["train", "--model-config", config, "--train-file", train, "--output-dir", root.appendingPathComponent("bad").path, "--report-to", "wandb"])
    #expect(bad.status == 2 && bad.error.contains("--report-to must be none, tensorboard or all") && !bad.error.contains("\n"), "\(bad.error)")
    let aFile = root.appendingPathComponent("a-file")
    try Data().write(to: aFile)
    let notADirectory = run(root.appendingPathComponent("file"), ["--logging-dir", aFile.path])
    let errorLine = notADirectory.error.split(separator: "\n").last { $0.contains("error:") }
    #expect(notADirectory.status != 0 && errorLine?.hasSuffix("error: \(aFile.path): is a file, not a directory (--logging-dir must be a directory)") == true,
            "\(notADirectory.error)")
}
