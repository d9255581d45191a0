import CLI
import Foundation
import GPT2
import Testing
import TestSupport
import Training

/// What a run may do in its output directory: only ever remove or replace what it wrote itself.
struct OutputDirectoryTests {
    let config: String
    let data: String

    init() throws {
        config = try microConfig()
        data = try sampleOfIdeas(from: 4000, count: 60, name: "ideas.txt")
    }

    func train(_ output: URL, steps: Int = 4, saveSteps: Int = 2, _ extra: [String] = []) -> (status: Int32, output: String, error: String) {
        runCLI(["train", "--model-config", config, "--tokenizer", tokenizerDirectory, "--train-file", data, "--output-dir", output.path,
                "--max-steps", "\(steps)", "--save-steps", "\(saveSteps)", "--logging-steps", "1", "--block-size", "32",
                "--per-device-train-batch-size", "4", "--eval-strategy", "no"] + extra)
    }

    func names(_ directory: URL) -> Set<String> { Set((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []) }

    @Test func overwritingNeverDeletesTheCheckpointTheRunStartsFrom() throws {
        let run = try TestPaths.temporaryDirectory("own-input").appendingPathComponent("run")
        try #require(train(run).status == 0)
        let checkpoint = Checkpoint.directory(in: run.path, step: 2)
        let result = runCLI(["train", "--model-name-or-path", checkpoint, "--train-file", data, "--output-dir", run.path,
                             "--overwrite-output-dir", "--max-steps", "2", "--block-size", "32"])
        #expect(result.status == 2 && result.error.contains("--model-name-or-path \(checkpoint) is part of the earlier run"), "\(result.error)")
        #expect(Checkpoint.isComplete(checkpoint) && Checkpoint.list(in: run.path).count == 2)
    }

    @Test func aUsersFolderNamedLikeACheckpointIsNeverReplaced() throws {
        let run = try TestPaths.temporaryDirectory("user-checkpoint").appendingPathComponent("run")
        try #require(train(run, steps: 2).status == 0)
        let users = run.appendingPathComponent("checkpoint-4")
        try FileManager.default.createDirectory(at: users, withIntermediateDirectories: true)
        try "mine".write(to: users.appendingPathComponent("notes.txt"), atomically: true, encoding: .utf8)
        for extra in [["--resume-from-checkpoint", "auto"], ["--overwrite-output-dir"]] {
            let result = train(run, steps: 6, extra)
            #expect(result.status == 2 && result.error.contains("\(users.path): not a checkpoint this program wrote"), "\(extra): \(result.error)")
        }
        #expect(try String(contentsOf: users.appendingPathComponent("notes.txt"), encoding: .utf8) == "mine")
    }

    @Test func aDirectoryThatIsNotARunIsRefusedAndOnlyOurFilesAreEverRemoved() throws {
        let root = try TestPaths.temporaryDirectory("foreign")
        // A model as save_pretrained leaves it: no metrics.jsonl.
        let saved = root.appendingPathComponent("saved")
        try GPT2Model.randomlyInitialized(config: try GPT2Config.resolve(config), seed: 1).save(directory: saved.path)
        let weights = try Data(contentsOf: saved.appendingPathComponent("model.safetensors"))
        let refused = train(saved)
        #expect(refused.status == 2 && refused.error.contains("not empty and not a gpt2-ddp run"), "\(refused.error)")
        let overwriting = train(saved, ["--overwrite-output-dir"])
        #expect(overwriting.status == 2 && overwriting.error.contains("config.json: not written by gpt2-ddp, and this run would overwrite it"), "\(overwriting.error)")
        #expect(try Data(contentsOf: saved.appendingPathComponent("model.safetensors")) == weights)
        #expect(names(saved) == ["config.json", "model.safetensors"], "a refused directory is left as it was")

        // A file that a run does not write is kept through --overwrite-output-dir, twice.
        let notes = root.appendingPathComponent("notes")
        try FileManager.default.createDirectory(at: notes, withIntermediateDirectories: true)
        try "keep me".write(to: notes.appendingPathComponent("README"), atomically: true, encoding: .utf8)
        #expect(train(notes).status == 2)
        #expect(train(notes, ["--overwrite-output-dir"]).status == 0)
        let again = train(notes, steps: 2, ["--overwrite-output-dir"])
        #expect(again.status == 0 && again.error.contains("entries not written by gpt2-ddp were kept"), "\(again.error)")
        #expect(try String(contentsOf: notes.appendingPathComponent("README"), encoding: .utf8) == "keep me")
        #expect(Checkpoint.list(in: notes.path).map(\.step) == [2], "the first run's checkpoint 4 was removed")
    }

    @Test func aRunFromBeforeTheManifestIsStillARun() throws {
        let run = try TestPaths.temporaryDirectory("legacy").appendingPathComponent("run")
        try #require(train(run).status == 0)
        // As 1.0 left a run: complete checkpoints, metrics.jsonl and the final model, no manifest.
        try FileManager.default.removeItem(at: run.appendingPathComponent(RunDirectory.manifestName))
        let again = train(run, steps: 2, ["--overwrite-output-dir"])
        #expect(again.status == 0 && again.error.contains("a gpt2-ddp run from before \(RunDirectory.manifestName)"), "\(again.error)")
        #expect(Checkpoint.list(in: run.path).map(\.step) == [2])
        // Without a checkpoint of this program, the same files are a user's.
        let user = try TestPaths.temporaryDirectory("not-legacy").appendingPathComponent("run")
        try #require(train(user).status == 0)
        for name in [RunDirectory.manifestName, "checkpoint-2", "checkpoint-4"] { try FileManager.default.removeItem(at: user.appendingPathComponent(name)) }
        let refused = train(user, ["--overwrite-output-dir"])
        #expect(refused.status == 2 && refused.error.contains("not written by gpt2-ddp, and this run would overwrite it"), "\(refused.error)")
    }

    @Test func otherCommandsNeverWriteOverAUsersFile() throws {
        let directory = try TestPaths.temporaryDirectory("other-commands")
        let mine = directory.appendingPathComponent("mine.safetensors")
        try Data("keep".utf8).write(to: mine)
        let forward = runCLI(["forward-backward", "--model-name-or-path", tinyModel, "--batch", fixtures.appendingPathComponent("batch.json").path,
                              "--output", mine.path])
        #expect(forward.status == 2 && forward.error.contains("\(mine.path): exists"), "\(forward.error)")
        // plot draws a run's own chart again, but not over a file of the user's.
        let run = directory.appendingPathComponent("run")
        try #require(train(run, steps: 2).status == 0)
        #expect(runCLI(["plot", run.path]).status == 0 && runCLI(["plot", run.path]).status == 0)
        let plotted = runCLI(["plot", run.path, "--output", mine.path])
        #expect(plotted.status == 2 && plotted.error.contains("\(mine.path): exists and is not a chart this run wrote"), "\(plotted.error)")
        #expect(try Data(contentsOf: mine) == Data("keep".utf8))
    }

    @Test func anOutputDirInsideAFileIsNamed() throws {
        let file = try TestPaths.temporaryDirectory("file").appendingPathComponent("plain")
        try "x".write(to: file, atomically: true, encoding: .utf8)
        for output in [file, file.appendingPathComponent("run")] {
            let result = train(output)
            #expect(result.status == 2 && result.error.contains("\(file.path): is a file, not a directory"), "\(result.error)")
        }
    }

    @Test func autoStartsAfreshThenResumes() throws {
        let run = try TestPaths.temporaryDirectory("auto").appendingPathComponent("run")
        let first = train(run, ["--resume-from-checkpoint", "auto"])
        #expect(first.status == 0 && !first.error.contains("resumed"), "\(first.error)")
        let second = train(run, steps: 6, ["--resume-from-checkpoint", "auto"])
        #expect(second.status == 0 && second.error.contains("resumed from \(Checkpoint.directory(in: run.path, step: 4)) at step 4"), "\(second.error)")
        let latest = train(try TestPaths.temporaryDirectory("latest").appendingPathComponent("run"), ["--resume-from-checkpoint", "latest"])
        #expect(latest.status == 2 && latest.error.contains("no complete checkpoint to resume from"))
    }

    @Test func staleTemporariesAreRemovedAndLiveOnesKept() throws {
        let run = try TestPaths.temporaryDirectory("temporaries").appendingPathComponent("run")
        try #require(train(run).status == 0)
        let finished = try runProcess(URL(fileURLWithPath: "/bin/sh"), ["-c", "echo $$"])
        let gone = try #require(Int32(finished.output.trimmingCharacters(in: .whitespacesAndNewlines)))
        let cache = run.appendingPathComponent(".cache")
        let stale = [run.appendingPathComponent(".checkpoint-6.tmp-\(gone)"), cache.appendingPathComponent(".tokens-ideas-0.bin.tmp-\(gone)")]
        try FileManager.default.createDirectory(at: stale[0], withIntermediateDirectories: true)
        try Data(count: 100).write(to: stale[0].appendingPathComponent("model.safetensors"))
        try Data(count: 100).write(to: stale[1])
        // A temporary of a process that is alive (pid 1), and a user's file that only looks like one.
        let live = run.appendingPathComponent(".loss.svg.tmp-1"), users = run.appendingPathComponent(".notes.tmp-draft")
        for file in [live, users] { try Data(count: 10).write(to: file) }
        let result = train(run, steps: 6, ["--resume-from-checkpoint", "auto"])
        #expect(result.status == 0, "\(result.error)")
        for path in stale {
            #expect(!FileManager.default.fileExists(atPath: path.path))
            #expect(result.error.contains("removed \(path.path), a temporary left by process \(gone), which is gone"), "\(result.error)")
        }
        for path in [live, users] { #expect(FileManager.default.fileExists(atPath: path.path)) }
    }

    @Test func aCheckpointMovedAsideByACrashIsPutBack() throws {
        let run = try TestPaths.temporaryDirectory("moved-aside").appendingPathComponent("run")
        try #require(train(run).status == 0)
        let checkpoint = Checkpoint.directory(in: run.path, step: 4)
        let aside = run.appendingPathComponent(".checkpoint-4.old-999999999")
        try FileManager.default.moveItem(atPath: checkpoint, toPath: aside.path)
        let result = train(run, steps: 6, ["--resume-from-checkpoint", "auto"])
        #expect(result.status == 0 && result.error.contains("resumed from \(checkpoint) at step 4"), "\(result.error)")
        #expect(!FileManager.default.fileExists(atPath: aside.path))
    }

    @Test func aTornMetricsLineIsCutAndTheCurveStaysWhole() throws {
        // A constant learning rate, so that a run of 4 steps continued to 6 follows a run of 6.
        let constant = ["--lr-scheduler-type", "constant"]
        let whole = try TestPaths.temporaryDirectory("torn-whole").appendingPathComponent("run")
        try #require(train(whole, steps: 6, constant).status == 0)
        let run = try TestPaths.temporaryDirectory("torn").appendingPathComponent("run")
        try #require(train(run, constant).status == 0)
        // Killed after step 4's checkpoint and during the append of a later record.
        let handle = try FileHandle(forWritingTo: run.appendingPathComponent("metrics.jsonl"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(#"{"epoch":0.3,"grad_norm":1.2,"lo"#.utf8))
        try handle.close()
        let result = train(run, steps: 6, constant + ["--resume-from-checkpoint", "auto"])
        #expect(result.status == 0 && result.error.contains("cut a torn last line of 32 bytes"), "\(result.error)")
        let losses = try stepRecords(run).map { $0["loss"] }, expected = try stepRecords(whole).map { $0["loss"] }
        #expect(losses == expected, "one record per step, as an uninterrupted run logs them")
        #expect(runCLI(["plot", run.path]).status == 0)
    }

    @Test func metricsThatCannotBeAppendedNameTheFile() throws {
        let directory = try TestPaths.temporaryDirectory("full")
        try FileManager.default.createSymbolicLink(atPath: directory.appendingPathComponent("metrics.jsonl").path, withDestinationPath: "/dev/full")
        let log = MetricsLog(directory: directory.path)
        #expect(throws: TrainingError.io(path: log.path, problem: "cannot append a record: No space left on device")) { try log.append(["step": .number(1)]) }
    }

    @Test func aCheckpointsBadFieldIsOneLineNamingFileAndField() throws {
        let run = try TestPaths.temporaryDirectory("bad-state").appendingPathComponent("run")
        try #require(train(run, steps: 2).status == 0)
        let checkpoint = URL(fileURLWithPath: Checkpoint.directory(in: run.path, step: 2))
        let state = checkpoint.appendingPathComponent(Checkpoint.stateFileName), runState = checkpoint.appendingPathComponent(Checkpoint.runStateFileName)
        let (original, originalRun) = (try String(contentsOf: state, encoding: .utf8), try String(contentsOf: runState, encoding: .utf8))
        let cases: [(URL, String, Int, String)] = [
            (state, original.replacingOccurrences(of: #""global_step" : 2"#, with: #""global_step" : -1"#), 6, "field 'global_step' is -1; it must be 0 or more"),
            (state, original, 1, "global_step 2 is past this run's last step 1"),
            (state, "{\"global_step\": ", 6, "is not valid JSON"),
            (state, original.replacingOccurrences(of: #""global_step" : 2"#, with: #""global_step" : "two""#), 6, "field 'global_step' is not a number"),
            (runState, originalRun.replacingOccurrences(of: #""world_size" : 1"#, with: #""world_size" : 0"#), 6, "field 'world_size' is 0; it must be 1 or more"),
        ]
        for (file, text, steps, message) in cases {
            try original.write(to: state, atomically: true, encoding: .utf8)
            try originalRun.write(to: runState, atomically: true, encoding: .utf8)
            try text.write(to: file, atomically: true, encoding: .utf8)
            let result = train(run, steps: steps, ["--resume-from-checkpoint", "latest"])
            let last = result.error.split(separator: "\n").last ?? ""
            #expect(result.status == 2 && last.hasPrefix("gpt2-ddp train: error: \(file.path): cannot resume: \(message)"), "\(message): \(result.error)")
            #expect(!result.error.contains("DecodingError"), "\(result.error)")
        }
    }

    @Test func theResumeLogListsEverySettingThatChanged() throws {
        let run = try TestPaths.temporaryDirectory("changed").appendingPathComponent("run")
        try #require(train(run, steps: 2).status == 0)
        let other = try sampleOfIdeas(from: 4000, count: 60, name: "other.txt")
        let result = runCLI(["train", "--model-config", config, "--tokenizer", tokenizerDirectory, "--train-file", other, "--output-dir", run.path,
                             "--max-steps", "3", "--save-steps", "2", "--logging-steps", "1", "--block-size", "32", "--per-device-train-batch-size", "4",
                             "--eval-strategy", "no", "--template", "{text}", "--resume-from-checkpoint", "auto"])
        #expect(result.status == 0, "\(result.error)")
        for change in [#"--train-file "\#(data)" -> "\#(other)""#, #"--template "{bos} {text} {eos}" -> "{text}""#, "--max-steps 2 -> 3"] {
            #expect(result.error.contains(change), "\(change) in: \(result.error)")
        }
    }

    @Test func aNaNLossStopsTheRunWithTheStepAndKeepsTheCheckpoint() throws {
        let run = try TestPaths.temporaryDirectory("nan").appendingPathComponent("run")
        let result = train(run, steps: 6, saveSteps: 1, ["--learning-rate", "1e30"])
        #expect(result.status == 1 && result.error.contains("gpt2-ddp train: error: loss is NaN at step 2 (learning rate "), "\(result.error)")
        #expect(Checkpoint.list(in: run.path).map(\.step) == [1])
        _ = try GPT2Model.load(directory: Checkpoint.directory(in: run.path, step: 1))
        #expect(try metrics(run).count == 1, "metrics.jsonl is valid JSON")
    }

    @Test func samplesDifferFromOneSamplingStepToTheNext() throws {
        let run = try TestPaths.temporaryDirectory("samples").appendingPathComponent("run")
        // With no learning the model stays the same: only the seed can change what is drawn.
        let result = train(run, ["--learning-rate", "0", "--sample-steps", "1"])
        #expect(result.status == 0, "\(result.error)")
        let drawn = try metrics(run).compactMap { $0["samples"] }
        #expect(drawn.count == 4 && Set(drawn.map { "\($0)" }).count == 4, "\(drawn)")
    }
}
