import Foundation
import GPT2
import SafeTensors
import Testing
import TestSupport
import Training

/// Real MPI runs: several ranks of the built executable under mpirun on this machine.
@Suite(.serialized) struct MPITests {
    static func losses(_ directory: URL) throws -> [Double] { try stepRecords(directory).map { $0["loss"]!.doubleValue! } }

    static func train(ranks: Int, batch: Int, accumulation: Int = 1, output: URL, data: String, config: String,
                      steps: Int = 20, extra: [String] = []) throws -> ProcessResult {
        let arguments = ["train", "--model-config", config, "--tokenizer", tokenizerDirectory, "--train-file", data, "--validation-split", "0.1",
                         "--output-dir", output.path, "--max-steps", "\(steps)", "--per-device-train-batch-size", "\(batch)",
                         "--gradient-accumulation-steps", "\(accumulation)", "--learning-rate", "3e-3", "--warmup-steps", "2",
                         "--logging-steps", "1", "--eval-steps", "10", "--save-steps", "10", "--seed", "11", "--replica-check-steps", "5"] + extra
        return ranks == 1 ? try runProcess(TestPaths.executable, arguments) : try runMPI(ranks: ranks, arguments)
    }

    @Test func ranksTimesBatchTrainsLikeOneRankWithTheWholeBatch() throws {
        let data = try sampleOfIdeas(from: 3000, count: 200, name: "ideas.txt")
        let config = try microConfig()
        let root = try TestPaths.temporaryDirectory("mpi")
        let reference = root.appendingPathComponent("one-rank")
        let single = try Self.train(ranks: 1, batch: 8, output: reference, data: data, config: config)
        try #require(single.status == 0, "\(single.error)")
        let expected = try Self.losses(reference)
        #expect(expected.count == 20)
        let finalReference = try GPT2Model.load(directory: reference.path).model.parameters.array
        // The config's dropout (0.1) is on in these runs: without it the losses differ.
        let withoutDropout = root.appendingPathComponent("one-rank-no-dropout")
        let plain = try Self.train(ranks: 1, batch: 8, output: withoutDropout, data: data, config: config, steps: 2,
                                   extra: ["--config-overrides", "embd_pdrop=0,attn_pdrop=0,resid_pdrop=0"])
        try #require(plain.status == 0, "\(plain.error)")
        #expect(try Self.losses(withoutDropout)[1] != expected[1])
        // The last set-up reduces the gradient buckets during backward (--overlap-allreduce).
        for (ranks, batch, accumulation, overlap) in [(2, 4, 1, false), (4, 2, 1, false), (1, 4, 2, false), (2, 2, 2, true)] {
            let output = root.appendingPathComponent("r\(ranks)-b\(batch)-a\(accumulation)")
            let result = try Self.train(ranks: ranks, batch: batch, accumulation: accumulation, output: output, data: data, config: config,
                                        extra: overlap ? ["--overlap-allreduce"] : [])
            try #require(result.status == 0, "\(ranks) ranks: \(result.error)")
            let losses = try Self.losses(output)
            #expect(losses.count == expected.count)
            for (step, (a, b)) in zip(losses, expected).enumerated() {
                #expect(abs(a - b) / b < 1e-5, "\(ranks) ranks x \(batch) x \(accumulation): step \(step + 1) loss \(a) vs \(b)")
            }
            let final = try GPT2Model.load(directory: output.path).model.parameters.array
            #expect(relativeError(final, finalReference) < 1e-5, "\(ranks) ranks x \(batch) x \(accumulation): final weights")
            // Rank 0 alone writes: one metrics file, one line per record.
            #expect(try metrics(output).filter { $0["train_loss"] != nil }.count == 1)
        }
    }

    @Test func aTwoRankRunResumesOnOneRankAndViceVersa() throws {
        let data = try sampleOfIdeas(from: 3300, count: 150, name: "ideas.txt")
        let config = try microConfig()
        let root = try TestPaths.temporaryDirectory("mpi-resume")
        let whole = root.appendingPathComponent("whole")
        try #require(try Self.train(ranks: 2, batch: 4, output: whole, data: data, config: config).status == 0)
        let expected = try metrics(whole).filter { ($0["step"]?.doubleValue ?? 0) > 10 && $0["loss"] != nil }
        for (ranks, batch) in [(1, 8), (2, 4)] {
            let resumed = root.appendingPathComponent("resumed-on-\(ranks)")
            try FileManager.default.createDirectory(at: resumed, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: Checkpoint.directory(in: whole.path, step: 10), toPath: Checkpoint.directory(in: resumed.path, step: 10))
            let result = try Self.train(ranks: ranks, batch: batch, output: resumed, data: data, config: config,
                                        extra: ["--resume-from-checkpoint", "latest"])
            try #require(result.status == 0, "\(result.error)")
            let actual = try metrics(resumed).filter { $0["loss"] != nil }
            #expect(actual.count == expected.count)
            for (a, b) in zip(actual, expected) {
                let (x, y) = (a["loss"]!.doubleValue!, b["loss"]!.doubleValue!)
                #expect(abs(x - y) / y < 1e-5, "resumed on \(ranks) rank(s): step \(a["step"]!) loss \(x) vs \(y)")
            }
            if ranks == 1 { #expect(result.error.contains("changed: ranks 2 -> 1")) }
        }
    }

    /// ZeRO-1 against the replicated optimizer on the same ranks: the same losses and final
    /// weights (1e-6; with Open MPI 4.1 the same bits), through both reduction paths and with
    /// accumulation, and checkpoints holding the whole moments.
    @Test func zeroStageOneTrainsLikeTheReplicatedOptimizer() throws {
        let data = try sampleOfIdeas(from: 3000, count: 200, name: "ideas.txt")
        let config = try microConfig()
        let root = try TestPaths.temporaryDirectory("mpi-zero")
        for (ranks, batch, accumulation, overlap) in [(2, 4, 1, false), (4, 1, 2, false), (2, 2, 2, true)] {
            let name = "r\(ranks)-b\(batch)-a\(accumulation)\(overlap ? "-overlap" : "")"
            // Small buckets, so that a bucket straddles the shards' edges. The overlapped sharded
            // run (the communication thread) is held against the blocking replicated one.
            let extra = ["--allreduce-bucket-mb", "0.3"]
            let (replicated, sharded) = (root.appendingPathComponent(name), root.appendingPathComponent(name + "-zero"))
            for (output, stage) in [(replicated, "0"), (sharded, "1")] {
                let result = try Self.train(ranks: ranks, batch: batch, accumulation: accumulation, output: output, data: data, config: config,
                                            extra: extra + ["--zero-stage", stage] + (overlap && stage == "1" ? ["--overlap-allreduce"] : []))
                try #require(result.status == 0, "\(name) zero stage \(stage): \(result.error)")
            }
            let (expected, losses) = (try Self.losses(replicated), try Self.losses(sharded))
            #expect(losses.count == 20 && expected.count == 20)
            for (step, (a, b)) in zip(losses, expected).enumerated() {
                #expect(abs(a - b) / b < 1e-6, "\(name): step \(step + 1) loss \(a) vs \(b)")
            }
            let final = try GPT2Model.load(directory: sharded.path).model.parameters.array
            #expect(relativeError(final, try GPT2Model.load(directory: replicated.path).model.parameters.array) < 1e-6, "\(name): final weights")
            // The checkpoint's moments are whole, as the replicated run writes them.
            for step in [10, 20] {
                let file = { (run: URL) in try SafeTensorsFile(path: Checkpoint.directory(in: run.path, step: step) + "/" + Checkpoint.optimizerFileName) }
                let (a, b) = (try file(sharded), try file(replicated))
                #expect(a.tensors.map(\.name) == b.tensors.map(\.name) && a.metadata["step"] == "\(step)")
                for name in b.tensors.map(\.name) {
                    #expect(relativeError(try a.floats(name), try b.floats(name)) < 1e-6, "\(name) at step \(step)")
                }
            }
        }
    }

    /// A ZeRO-1 run resumes bit for bit on its own rank count, and on another with or without sharding.
    @Test func aShardedRunResumesExactlyAndOnAnyRankCount() throws {
        let data = try sampleOfIdeas(from: 3300, count: 150, name: "ideas.txt")
        let config = try microConfig()
        let root = try TestPaths.temporaryDirectory("mpi-zero-resume")
        let whole = root.appendingPathComponent("whole")
        try #require(try Self.train(ranks: 2, batch: 4, output: whole, data: data, config: config, extra: ["--zero-stage", "1"]).status == 0)
        let expected = try metrics(whole).filter { ($0["step"]?.doubleValue ?? 0) > 10 && $0["loss"] != nil }.map { $0["loss"]!.doubleValue! }
        let finalWeights = try GPT2Model.load(directory: whole.path).model.parameters.array
        for (ranks, batch, stage) in [(2, 4, "1"), (1, 8, "1"), (4, 2, "0"), (4, 2, "1")] {
            let resumed = root.appendingPathComponent("resumed-on-\(ranks)-zero-\(stage)")
            try FileManager.default.createDirectory(at: resumed, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: Checkpoint.directory(in: whole.path, step: 10), toPath: Checkpoint.directory(in: resumed.path, step: 10))
            let result = try Self.train(ranks: ranks, batch: batch, output: resumed, data: data, config: config,
                                        extra: ["--zero-stage", stage, "--resume-from-checkpoint", "latest"])
            try #require(result.status == 0, "\(result.error)")
            let losses = try metrics(resumed).filter { $0["loss"] != nil }.map { $0["loss"]!.doubleValue! }
            let final = try GPT2Model.load(directory: resumed.path).model.parameters.array
            if ranks == 2 {
                #expect(losses == expected, "resumed where it stopped: the same bits")
                #expect(final == finalWeights)
            } else {
                #expect(losses.count == expected.count)
                for (a, b) in zip(losses, expected) { #expect(abs(a - b) / b < 1e-5, "resumed on \(ranks) rank(s), zero stage \(stage): \(a) vs \(b)") }
                #expect(relativeError(final, finalWeights) < 1e-5)
            }
        }
    }

    @Test func aFailingRankEndsTheWholeJobWithItsNameAndNoHang() throws {
        let data = try sampleOfIdeas(from: 3500, count: 60, name: "ideas.txt")
        let config = try microConfig()
        let output = try TestPaths.temporaryDirectory("mpi-fail").appendingPathComponent("run")
        // The ranks get the same flags, but rank 1 runs where the relative tokenizer path names
        // nothing (as on a node without that folder): its error must end rank 0 too.
        let script = try TestPaths.temporaryDirectory("mpi-fail").appendingPathComponent("rank.sh")
        let elsewhere = try TestPaths.temporaryDirectory("mpi-fail-elsewhere")
        try """
        #!/bin/sh
        cd "\(URL(fileURLWithPath: tokenizerDirectory).deletingLastPathComponent().path)"
        if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then cd "\(elsewhere.path)"; fi
        exec "\(TestPaths.executable.path)" "$@" --tokenizer "\(URL(fileURLWithPath: tokenizerDirectory).lastPathComponent)"
        """.write(to: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
        let start = Date()
        let result = try runProcess(URL(fileURLWithPath: "/usr/bin/mpirun"),
                                    ["--oversubscribe", "-np", "2", script.path, "train", "--model-config", config,
                                     "--train-file", data, "--output-dir", output.path, "--max-steps", "3"],
                                    environment: ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"])
        #expect(result.status != 0)
        #expect(Date().timeIntervalSince(start) < 30)
        #expect(result.error.contains("rank 1 of 2") && result.error.contains("\(elsewhere.path)/gpt2-tokenizer"), "\(result.error)")
    }

    @Test func ranksStartedWithDifferentSettingsAreRefusedNamingThem() throws {
        let data = try sampleOfIdeas(from: 3550, count: 60, name: "ideas.txt")
        let config = try microConfig()
        let directory = try TestPaths.temporaryDirectory("mpi-settings")
        // Rank 1 alone gets another --max-steps and --seed: it would hang at the end, or train on the wrong shard.
        let script = directory.appendingPathComponent("rank.sh")
        try """
        #!/bin/sh
        if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then exec "\(TestPaths.executable.path)" "$@" --max-steps 5 --seed 3; fi
        exec "\(TestPaths.executable.path)" "$@" --max-steps 3 --seed 42
        """.write(to: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
        let start = Date()
        let result = try runProcess(URL(fileURLWithPath: "/usr/bin/mpirun"),
                                    ["--oversubscribe", "-np", "2", script.path, "train", "--model-config", config, "--tokenizer", tokenizerDirectory,
                                     "--train-file", data, "--output-dir", directory.appendingPathComponent("run").path],
                                    environment: ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"])
        #expect(result.status != 0)
        #expect(Date().timeIntervalSince(start) < 30)
        #expect(result.error.contains("--max-steps is 3 on rank 0 but 5 on rank 1; --seed is 42 on rank 0 but 3 on rank 1"), "\(result.error)")
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("run").path), "nothing was written")
    }

    @Test func killingARankMidRunEndsTheJobWithinSeconds() throws {
        let data = try sampleOfIdeas(from: 3600, count: 200, name: "ideas.txt")
        let config = try microConfig()
        let directory = try TestPaths.temporaryDirectory("mpi-kill")
        let output = directory.appendingPathComponent("run")
        let pidFile = directory.appendingPathComponent("rank1.pid").path
        let script = directory.appendingPathComponent("rank.sh")
        try """
        #!/bin/sh
        if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then echo $$ > "\(pidFile)"; fi
        exec "\(TestPaths.executable.path)" "$@"
        """.write(to: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/mpirun")
        process.arguments = ["--oversubscribe", "-np", "2", script.path, "train", "--model-config", config, "--tokenizer", tokenizerDirectory,
                             "--train-file", data, "--output-dir", output.path, "--max-steps", "100000", "--logging-steps", "1",
                             "--save-steps", "5", "--eval-strategy", "no"]
        process.environment = ProcessInfo.processInfo.environment.merging(["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"]) { $1 }
        let errorPipe = Pipe()
        process.standardError = errorPipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // Wait until a checkpoint exists and training is under way, then kill rank 1.
        let deadline = Date().addingTimeInterval(120)
        while Checkpoint.list(in: output.path).isEmpty && process.isRunning && Date() < deadline { usleep(100_000) }
        try #require(process.isRunning, "the job ended before it could be killed")
        let pid = try #require(Int32(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        let killed = Date()
        kill(pid, SIGKILL)
        while process.isRunning && Date().timeIntervalSince(killed) < 60 { usleep(100_000) }
        let seconds = Date().timeIntervalSince(killed)
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        let error = String(decoding: errorPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(seconds < 30, "the job took \(seconds) s to end")
        #expect(process.terminationStatus != 0)
        #expect(error.contains("rank 1"), "the message names the rank: \(error)")
        // The last complete checkpoint is intact and loads.
        let last = try #require(Checkpoint.list(in: output.path).last)
        #expect(try Checkpoint.readState(last.path).state.globalStep == last.step)
        _ = try GPT2Model.load(directory: last.path)
    }

    @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/sshd"),
                   "needs root and openssh-server (.ci/run installs it)"))
    func twoHostsInNetworkNamespacesTrainLikeOneProcess() throws {
        let data = try sampleOfIdeas(from: 3900, count: 80, name: "ideas.txt")
        let config = try microConfig()
        let root = try TestPaths.temporaryDirectory("rehearsal")
        let arguments = ["train", "--model-config", config, "--tokenizer", tokenizerDirectory, "--train-file", data, "--validation-split", "0",
                         "--max-steps", "6", "--logging-steps", "1", "--learning-rate", "3e-3", "--seed", "2"]
        let single = try runProcess(TestPaths.executable, arguments + ["--per-device-train-batch-size", "8", "--output-dir", root.appendingPathComponent("one").path])
        try #require(single.status == 0)
        let script = TestPaths.packageRoot.appendingPathComponent("launch/rehearse-cluster")
        // Over TCP with the communication thread (--overlap-allreduce).
        let cluster = try runProcess(URL(fileURLWithPath: "/bin/bash"), [script.path] + arguments + ["--per-device-train-batch-size", "4", "--overlap-allreduce",
                                                                                               "--output-dir", root.appendingPathComponent("two").path],
                                     environment: ["GPT2_DDP": TestPaths.executable.path])
        if cluster.status == 77 {
            print("twoHostsInNetworkNamespacesTrainLikeOneProcess: \(cluster.error)")  // this machine cannot host the rehearsal
            return
        }
        try #require(cluster.status == 0, "\(cluster.error)")
        let (a, b) = (try Self.losses(root.appendingPathComponent("one")), try Self.losses(root.appendingPathComponent("two")))
        #expect(a.count == 6 && b.count == 6)
        for (x, y) in zip(a, b) { #expect(abs(x - y) / x < 1e-5) }
        // The same over a link limited to 1 Gb/s (tc tbf, with a 64 KB bucket so that a step's
        // traffic cannot pass as one burst), with ZeRO-1 reduced after backward: each step sends
        // each way the reduce-scatter's and the all-gather's halves of the 3.2 MB of parameters,
        // 26 Mbit, so 6 steps cannot wait less than 0.16 s on the link.
        let limited = root.appendingPathComponent("two-limited")
        let slow = try runProcess(URL(fileURLWithPath: "/bin/bash"), [script.path] + arguments + ["--per-device-train-batch-size", "4", "--zero-stage", "1",
                                                                                            "--output-dir", limited.path],
                                  environment: ["GPT2_DDP": TestPaths.executable.path, "LINK_RATE": "1gbit", "LINK_BURST": "64kb"])
        if slow.status == 77 {
            print("twoHostsInNetworkNamespacesTrainLikeOneProcess, rate-limited: \(slow.error)")  // no tc or no sch_tbf here
            return
        }
        try #require(slow.status == 0, "\(slow.error)")
        for (x, y) in zip(a, try Self.losses(limited)) { #expect(abs(x - y) / x < 1e-5) }
        let wait = try #require(try metrics(limited).last?["allreduce_wait_seconds"]?.doubleValue)
        #expect(wait > 0.1, "the link was limited: \(wait) s waiting on it")
    }
}
