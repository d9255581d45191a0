import Foundation
import GPT2
import Testing
import TestSupport
import Training

/// The launch scripts: the supervisor (launch/train) and the Slurm job (launch/slurm.sbatch).
@Suite(.serialized) struct LaunchTests {
    static let launch = TestPaths.packageRoot.appendingPathComponent("launch")

    /// A stand-in for gpt2-ddp that launch/train starts through launch/local (mpirun, one rank): each
    /// call records its arguments and exits with the next of `exitCodes`; a call in `checkpointAt`
    /// first leaves a complete checkpoint in the output dir, as a run that got that far would.
    struct FakeTrainer {
        let directory: URL
        let output: URL

        init(exitCodes: [Int32], checkpointAt calls: Set<Int> = []) throws {
            directory = try TestPaths.temporaryDirectory("fake-trainer")
            output = directory.appendingPathComponent("run")
            try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
            try (exitCodes.map(String.init).joined(separator: "\n") + "\n").write(to: directory.appendingPathComponent("codes"), atomically: true, encoding: .utf8)
            for call in calls { try Data().write(to: directory.appendingPathComponent("checkpoint-at-\(call)")) }
            let script = directory.appendingPathComponent("gpt2-ddp")
            try """
            #!/bin/bash
            dir="\(directory.path)"
            n=1; while [ -e "$dir/call-$n" ]; do n=$((n + 1)); done
            printf '%s\\n' "$@" > "$dir/call-$n"
            if [ -e "$dir/checkpoint-at-$n" ]; then
                rm -rf "\(output.path)/checkpoint-$n" && mkdir "\(output.path)/checkpoint-$n" && touch "\(output.path)/checkpoint-$n/checkpoint.complete"
            fi
            exit "$(sed -n "${n}p" "$dir/codes")"
            """.write(to: script, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
        }

        /// Runs launch/train with these flags (after `--ranks 1`).
        func supervise(_ flags: [String], maxRestarts: Int = 3) throws -> ProcessResult {
            try runProcess(URL(fileURLWithPath: "/bin/bash"),
                           [LaunchTests.launch.appendingPathComponent("train").path, "--max-restarts", "\(maxRestarts)", "--ranks", "1"] + flags,
                           environment: ["GPT2_DDP": directory.appendingPathComponent("gpt2-ddp").path])
        }

        /// The arguments of each call, in order.
        var calls: [[String]] {
            (1...).lazy.map { directory.appendingPathComponent("call-\($0)") }
                .prefix { FileManager.default.fileExists(atPath: $0.path) }
                .map { (try? String(contentsOf: $0, encoding: .utf8))?.split(separator: "\n").map(String.init) ?? [] }
        }
    }

    @Test func theSupervisorNeverRetriesARefusal() throws {
        let refused = try FakeTrainer(exitCodes: [2, 0])
        let result = try refused.supervise(["--output-dir", refused.output.path, "--model-config", "tiny"])
        #expect(result.status == 2)
        #expect(refused.calls.count == 1, "\(result.error)")
        #expect(!result.error.contains("restart"), "\(result.error)")
        // Its own usage errors exit 2 as well, before anything runs.
        for flags in [["--max-restarts"], ["--max-restarts", "x", "--output-dir", "o"], ["--ranks"], ["--model-config", "tiny"]] {
            let fake = try FakeTrainer(exitCodes: [0])
            let usage = try runProcess(URL(fileURLWithPath: "/bin/bash"), [Self.launch.appendingPathComponent("train").path] + flags,
                                       environment: ["GPT2_DDP": fake.directory.appendingPathComponent("gpt2-ddp").path])
            #expect(usage.status == 2, "\(flags): \(usage.error)")
            #expect(usage.error.hasPrefix("launch/train: ") && usage.error.split(separator: "\n").count == 1, "\(flags): \(usage.error)")
            #expect(fake.calls.isEmpty)
        }
    }

    @Test func theRealProgramsRefusalUnderMPIIsNotRetried() throws {
        // An output dir holding someone's file: rank 0 refuses, the job ends, mpirun passes on the 2.
        let output = try TestPaths.temporaryDirectory("refusal").appendingPathComponent("run")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        try "mine".write(to: output.appendingPathComponent("notes.txt"), atomically: true, encoding: .utf8)
        let data = try sampleOfIdeas(from: 4200, count: 20, name: "ideas.txt")
        let result = try runProcess(URL(fileURLWithPath: "/bin/bash"),
                                    [Self.launch.appendingPathComponent("train").path, "--ranks", "2", "--model-config", try microConfig(),
                                     "--tokenizer", tokenizerDirectory, "--train-file", data, "--output-dir", output.path, "--max-steps", "2"],
                                    environment: ["GPT2_DDP": TestPaths.executable.path])
        #expect(result.status == 2, "\(result.error)")
        #expect(result.error.contains("not a gpt2-ddp run") && !result.error.contains("launch/train: exit status"), "\(result.error)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: output.path) == ["notes.txt"])
    }

    @Test func aRestartResumesWithAutoInPlaceOfTheUsersFlags() throws {
        // Each way of writing the flags; the first call is killed (137) after writing a checkpoint.
        for userFlags in [["--overwrite-output-dir"], ["--resume-from-checkpoint", "/elsewhere/checkpoint-8"],
                          ["--resume-from-checkpoint=latest"], ["--overwrite-output-dir", "--resume-from-checkpoint", "auto"], []] {
            let fake = try FakeTrainer(exitCodes: [137, 0], checkpointAt: [1])
            let flags = ["--model-config", "tiny", "--output-dir", fake.output.path] + userFlags + ["--seed", "3"]
            let result = try fake.supervise(flags)
            #expect(result.status == 0, "\(userFlags): \(result.error)")
            #expect(fake.calls == [["train"] + flags, ["train", "--model-config", "tiny", "--output-dir", fake.output.path, "--seed", "3", "--resume-from-checkpoint", "auto"]],
                    "\(userFlags): \(result.error)")
            #expect(result.error.contains("exit status 137; restart 1 of 3 with --resume-from-checkpoint auto"), "\(result.error)")
        }
    }

    @Test func beforeItsFirstCheckpointARestartRepeatsTheUsersStart() throws {
        // Resuming from a checkpoint elsewhere: a restart with auto would start afresh instead.
        let elsewhere = try FakeTrainer(exitCodes: [1, 0])
        let fromElsewhere = ["--output-dir", elsewhere.output.path, "--resume-from-checkpoint", "/elsewhere/checkpoint-8"]
        #expect(try elsewhere.supervise(fromElsewhere).status == 0)
        #expect(elsewhere.calls == [["train"] + fromElsewhere, ["train"] + fromElsewhere])
        // Starting afresh over an earlier run whose checkpoint is still there: auto would continue
        // that run; the restart starts afresh again, and once this run has written a checkpoint of
        // its own (under the earlier one's name), continues from it.
        let over = try FakeTrainer(exitCodes: [1, 1, 1, 0], checkpointAt: [2])
        let earlier = over.output.appendingPathComponent("checkpoint-2")
        try FileManager.default.createDirectory(at: earlier, withIntermediateDirectories: true)
        try Data().write(to: earlier.appendingPathComponent("checkpoint.complete"))
        let afresh = ["--output-dir=\(over.output.path)", "--overwrite-output-dir"]
        let result = try over.supervise(afresh)
        #expect(result.status == 0, "\(result.error)")
        let auto = ["train", "--output-dir=\(over.output.path)", "--resume-from-checkpoint", "auto"]
        #expect(over.calls == [["train"] + afresh, ["train"] + afresh, auto, auto], "\(result.error)")
        // Without such flags a restart before any checkpoint is auto too: it starts afresh.
        let plain = try FakeTrainer(exitCodes: [1, 0])
        #expect(try plain.supervise(["--output-dir", plain.output.path]).status == 0)
        #expect(plain.calls.last == ["train", "--output-dir", plain.output.path, "--resume-from-checkpoint", "auto"])
    }

    @Test func theSupervisorGivesUpAfterItsRestartsWithTheLastStatus() throws {
        let fake = try FakeTrainer(exitCodes: [1, 1, 3])
        let result = try fake.supervise(["--output-dir", fake.output.path], maxRestarts: 2)
        #expect(result.status == 3)
        #expect(fake.calls.count == 3)
        #expect(result.error.contains("giving up after 2 restart(s); last exit status 3"), "\(result.error)")
    }

    /// launch/rehearse-slurm: a one-node Slurm cluster of its own runs launch/slurm.sbatch as 2
    /// tasks (srun --mpi=pmix), rank 1 is killed after the first checkpoint and the job requeued.
    @Test func aSlurmJobKilledAfterACheckpointIsRequeuedAndResumes() throws {
        let root = try TestPaths.temporaryDirectory("slurm")
        let model = root.appendingPathComponent("model"), output = root.appendingPathComponent("run")
        let initialised = try runProcess(TestPaths.executable, ["init", "--model-config", try microConfig(), "--output-dir", model.path])
        try #require(initialised.status == 0, "\(initialised.error)")
        let data = try sampleOfIdeas(from: 4300, count: 200, name: "ideas.txt")
        // Long enough (a few seconds) that the kill, polled every 0.1 s, lands well before the end.
        let steps = 160
        let result = try runProcess(URL(fileURLWithPath: "/bin/bash"), [Self.launch.appendingPathComponent("rehearse-slurm").path], environment: [
            "GPT2_DDP": TestPaths.executable.path, "MODEL": model.path, "TOKENIZER": tokenizerDirectory, "TRAIN_FILE": data, "OUTPUT_DIR": output.path,
            "TRAIN_FLAGS": "--max-steps \(steps) --per-device-train-batch-size 4 --learning-rate 3e-3 --logging-steps 1 --eval-steps 80 --save-steps 10 --seed 3",
        ])
        if result.status == 77 {
            print("aSlurmJobKilledAfterACheckpointIsRequeuedAndResumes: \(result.error)")  // this machine cannot host the rehearsal
            return
        }
        try #require(result.status == 0, "\(result.error)\n\(result.output)")
        let log = result.output
        #expect(log.contains("2 rank(s) x 4"), "both runs are one job of 2 ranks: \(log)")
        let killedAfter = try #require(result.error.firstMatch(of: /killed rank 1 \(pid \d+\) after \S+checkpoint-(\d+)/)).1
        let newest = try #require(result.error.firstMatch(of: /newest complete checkpoint after the kill: (\S+)/)).1
        let resumed = try #require(log.firstMatch(of: /resumed from (\S+) at step (\d+)/), "\(log)")
        #expect(resumed.1 == newest, "it resumed from the newest checkpoint the killed job left: \(log)")
        let step = try #require(Int(resumed.2))
        #expect(step >= Int(killedAfter)! && step < steps)
        // Metrics as one uninterrupted run writes them: every step once, evaluations, the summary.
        #expect(try stepRecords(output).compactMap { $0["step"]?.doubleValue } == (1...steps).map(Double.init))
        #expect(try metrics(output).filter { $0["eval_loss"] != nil }.compactMap { $0["step"]?.doubleValue } == [80, 160])
        #expect(try metrics(output).last?["train_loss"] != nil)
        let (final, _) = try GPT2Model.load(directory: output.path)
        #expect(final.config.nEmbd == 16)
    }
}
