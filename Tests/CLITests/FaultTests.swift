import Foundation
import GPT2
import Testing
import TestSupport
import Training

/// Faults for real, on the built executable: kill -9 at random moments, two runs racing for one
/// output directory, a full disk.
@Suite(.serialized) struct FaultTests {
    static func arguments(config: String, data: String, output: URL, steps: Int) -> [String] {
        ["train", "--model-config", config, "--tokenizer", tokenizerDirectory, "--train-file", data, "--output-dir", output.path,
         "--max-steps", "\(steps)", "--save-steps", "1", "--logging-steps", "1", "--block-size", "32", "--per-device-train-batch-size", "4",
         "--eval-steps", "5", "--validation-split", "0.1", "--learning-rate", "3e-3", "--warmup-steps", "3"]
    }

    static func start(_ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = TestPaths.executable
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Entries this program names `.NAME.tmp-PID` or `.NAME.old-PID`, anywhere under `directory`.
    static func temporaries(under directory: URL) -> [String] {
        let entries = FileManager.default.enumerator(atPath: directory.path)?.compactMap { $0 as? String } ?? []
        return entries.filter { path in
            let name = URL(fileURLWithPath: path).lastPathComponent
            return name.hasPrefix(".") && (name.contains(".tmp-") || name.contains(".old-"))
        }
    }

    @Test func twentyRandomKillsThenAutoEndWithTheUninterruptedModel() throws {
        let config = try microConfig()
        let data = try sampleOfIdeas(from: 4200, count: 120, name: "ideas.txt")
        let root = try TestPaths.temporaryDirectory("kills")
        defer { try? FileManager.default.removeItem(at: root) }
        let steps = 60
        let whole = root.appendingPathComponent("whole"), killed = root.appendingPathComponent("killed")
        let reference = try runProcess(TestPaths.executable, Self.arguments(config: config, data: data, output: whole, steps: steps))
        try #require(reference.status == 0, "\(reference.error)")
        let resumable = Self.arguments(config: config, data: data, output: killed, steps: steps) + ["--resume-from-checkpoint", "auto"]
        var random = SystemRandomNumberGenerator()
        var kills = 0
        while kills < 20 {
            let checkpointsBefore = Checkpoint.list(in: killed.path).count
            let process = try Self.start(resumable)
            // Once this attempt has written a checkpoint, the next moment is most likely mid-write.
            while process.isRunning && Checkpoint.list(in: killed.path).count <= checkpointsBefore { usleep(2_000) }
            usleep(UInt32.random(in: 0...150_000, using: &random))
            guard process.isRunning else { break }  // finished before the kill: nothing left to interrupt
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            kills += 1
        }
        #expect(kills == 20, "the run finished after \(kills) kills; give it more steps")
        let last = try runProcess(TestPaths.executable, resumable)
        #expect(last.status == 0, "\(last.error)")
        #expect(try Data(contentsOf: killed.appendingPathComponent("model.safetensors")) == Data(contentsOf: whole.appendingPathComponent("model.safetensors")),
                "byte-identical final weights")
        // Every record once, as the uninterrupted run wrote it (but for the timings).
        func logged(_ directory: URL) throws -> [MetricsRecord] {
            try metrics(directory).map { $0.filter { !["tokens_per_second", "train_runtime"].contains($0.key) } }
        }
        #expect(try logged(killed) == logged(whole), "the same records, each once")
        #expect(Self.temporaries(under: killed).isEmpty, "left behind: \(Self.temporaries(under: killed))")
    }

    @Test func aSecondRunIntoALockedOutputDirIsRefusedNamingTheHolder() throws {
        let config = try microConfig()
        let data = try sampleOfIdeas(from: 4400, count: 60, name: "ideas.txt")
        let output = try TestPaths.temporaryDirectory("locked").appendingPathComponent("run")
        let first = try Self.start(Self.arguments(config: config, data: data, output: output, steps: 100_000))
        defer { if first.isRunning { kill(first.processIdentifier, SIGKILL) }; first.waitUntilExit() }
        while first.isRunning && Checkpoint.list(in: output.path).isEmpty { usleep(10_000) }
        try #require(first.isRunning)
        for extra in [["--resume-from-checkpoint", "auto"], ["--overwrite-output-dir"]] {
            let second = try runProcess(TestPaths.executable, Self.arguments(config: config, data: data, output: output, steps: 10) + extra)
            #expect(second.status == 2, "\(extra)")
            #expect(second.error.contains("another gpt2-ddp run is using this output dir (process \(first.processIdentifier) on "), "\(second.error)")
        }
        #expect(first.isRunning, "the first run goes on")
        // The kernel releases the lock of a killed run: the next one may start.
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        let next = try runProcess(TestPaths.executable, Self.arguments(config: config, data: data, output: output, steps: 2) + ["--overwrite-output-dir"])
        #expect(next.status == 0, "\(next.error)")
    }

    @Test func twoRunsRacingForOneOutputDirLeaveOneRun() throws {
        let config = try microConfig()
        let data = try sampleOfIdeas(from: 4500, count: 60, name: "ideas.txt")
        let output = try TestPaths.temporaryDirectory("race").appendingPathComponent("run")
        let arguments = Self.arguments(config: config, data: data, output: output, steps: 6)
        let runs = [try Self.start(arguments), try Self.start(arguments)]
        for run in runs { run.waitUntilExit() }
        #expect(runs.map(\.terminationStatus).sorted() == [0, 2], "one run, one refusal")
        let steps = try stepRecords(output).compactMap { $0["step"]?.doubleValue }
        #expect(steps == (1...6).map(Double.init), "one run's records, not two interleaved")
    }

    @Test(.enabled(if: getuid() == 0, "needs root to mount a small tmpfs"))
    func aFullDiskIsOneLineNamingTheFileAndLeavesNoTemporaries() throws {
        let config = try microConfig()
        let data = try sampleOfIdeas(from: 4600, count: 60, name: "ideas.txt")
        let root = try TestPaths.temporaryDirectory("disk-full")
        let mount = root.appendingPathComponent("small")
        try FileManager.default.createDirectory(at: mount, withIntermediateDirectories: true)
        // 6 MB: room for the logs but not for a checkpoint of this model (about 11 MB).
        let mounted = try runProcess(URL(fileURLWithPath: "/bin/mount"), ["-t", "tmpfs", "-o", "size=6m", "tmpfs", mount.path])
        guard mounted.status == 0 else {
            print("aFullDiskIsOneLineNamingTheFileAndLeavesNoTemporaries: skipped, this machine cannot mount a tmpfs: \(mounted.error)")
            return
        }
        defer { _ = try? runProcess(URL(fileURLWithPath: "/bin/umount"), [mount.path]) }
        let output = mount.appendingPathComponent("run")
        let result = try runProcess(TestPaths.executable, Self.arguments(config: config, data: data, output: output, steps: 4)
                                    + ["--cache-dir", root.appendingPathComponent("cache").path])
        let last = result.error.split(separator: "\n").last.map(String.init) ?? ""
        #expect(result.status == 1)
        #expect(last.hasPrefix("gpt2-ddp train: error: \(output.path)/") && last.contains("No space left on device"), "\(result.error)")
        #expect(!result.error.contains("NSCocoaErrorDomain") && !result.error.contains("Code="), "\(result.error)")
        #expect(Self.temporaries(under: output).isEmpty, "left behind: \(Self.temporaries(under: output))")
        #expect(try metrics(output).count >= 1, "metrics.jsonl is whole")
    }
}
