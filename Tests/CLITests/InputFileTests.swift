import Foundation
import Testing
import TestSupport

/// Input files as a careless or hostile user gives them: tokenizer files changed or not files at
/// all, pre-tokenized ids out of range, blank records, byte-order marks, bad UTF-8, bad quoting.

/// A file in `directory` holding `bytes`.
private func write(_ bytes: [UInt8], _ name: String, in directory: URL) throws -> String {
    let path = directory.appendingPathComponent(name).path
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return path
}

private func write(_ text: String, _ name: String, in directory: URL) throws -> String {
    try write(Array(text.utf8), name, in: directory)
}

/// A copy of GPT-2's tokenizer files in `directory`/`name`, changed by the closures.
private func tokenizerCopy(_ name: String, in directory: URL, vocabulary: (inout [String: Int]) -> Void = { _ in },
                           merges: (String) -> String = { $0 }) throws -> String {
    let copy = directory.appendingPathComponent(name)
    try FileManager.default.createDirectory(at: copy, withIntermediateDirectories: true)
    let source = URL(fileURLWithPath: tokenizerDirectory)
    var tokens = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: source.appendingPathComponent("vocab.json"))) as? [String: Int])
    vocabulary(&tokens)
    try JSONSerialization.data(withJSONObject: tokens).write(to: copy.appendingPathComponent("vocab.json"))
    try merges(String(contentsOf: source.appendingPathComponent("merges.txt"), encoding: .utf8))
        .write(to: copy.appendingPathComponent("merges.txt"), atomically: true, encoding: .utf8)
    return copy.path
}

@Test func anotherVocabularyOrMergesIsAnotherTokenizer() throws {
    let root = try TestPaths.temporaryDirectory("tokenizer-contents")
    defer { try? FileManager.default.removeItem(at: root) }
    let original = try tokenizerCopy("original", in: root)
    let swapped = try tokenizerCopy("swapped", in: root, vocabulary: { ($0["Ġa"], $0["Ġthe"]) = ($0["Ġthe"], $0["Ġa"]) })
    let noMerges = try tokenizerCopy("no-merges", in: root, merges: { _ in "" })
    let train = try sampleOfIdeas(from: 100, count: 40, name: "train.txt")
    let cache = root.appendingPathComponent("cache")
    let config = try microConfig()
    func run(_ tokenizer: String, _ output: String, steps: Int = 2, _ extra: [String] = []) -> (status: Int32, output: String, error: String) {
        runCLI(["train", "--model-config", config, "--tokenizer", tokenizer, "--train-file", train, "--cache-dir", cache.path,
                "--output-dir", root.appendingPathComponent(output).path, "--max-steps", "\(steps)", "--save-steps", "1",
                "--validation-split", "0", "--eval-strategy", "no"] + extra)
    }
    let first = run(original, "first")
    #expect(first.status == 0 && first.error.contains("tokenized 40 examples into the cache"), "\(first.error)")
    let again = run(original, "again")
    #expect(again.status == 0 && again.error.contains("read 40 tokenized examples from the cache"), "the same tokenizer reuses the cache: \(again.error)")
    for (tokenizer, output) in [(swapped, "with-swapped-ids"), (noMerges, "without-merges")] {
        let result = run(tokenizer, output)
        #expect(result.status == 0 && result.error.contains("tokenized 40 examples into the cache"), "\(output): \(result.error)")
    }
    #expect(try FileManager.default.contentsOfDirectory(atPath: cache.path).filter { $0.hasPrefix("tokens-") }.count == 3)

    // A resume with other tokenizer files is refused; with the same tokenizer as the run saved it
    // (its merges.txt has another header line) it goes on.
    let refused = run(swapped, "first", steps: 3, ["--resume-from-checkpoint", "latest"])
    #expect(refused.status != 0 && refused.error.contains("its tokenizer differs from this run's"), "\(refused.error)")
    let savedTokenizer = root.appendingPathComponent("again").path
    #expect(try String(contentsOfFile: savedTokenizer + "/merges.txt", encoding: .utf8).prefix(60)
        != (try String(contentsOfFile: original + "/merges.txt", encoding: .utf8).prefix(60)))
    let resumed = run(savedTokenizer, "first", steps: 3, ["--resume-from-checkpoint", "latest"])
    #expect(resumed.status == 0 && resumed.error.contains("resumed from"), "\(resumed.error)")
}

@Test func preTokenizedIdsOutsideTheVocabularyAreFoundBeforeTrainingWithTheirLine() throws {
    let directory = try TestPaths.temporaryDirectory("ids")
    let config = try microConfig()
    let good = #"{"input_ids": [10, 11, 12]}"# + "\n\n" + #"{"input_ids": [13, 14], "labels": [-100, 14]}"# + "\n"
    let cases: [(String, String)] = [
        (#"{"input_ids": [15, 16], "labels": [15, 60000]}"#, "4: label 60000 is outside the model's vocabulary (size 50257; -100 marks a token not predicted)"),
        (#"{"input_ids": [15, 50257]}"#, "4: token id 50257 is outside the model's vocabulary (size 50257)"),
        (#"{"input_ids": [15, 16], "labels": [15, 1000000000000]}"#, "4: labels[1] is 1000000000000, out of range for a token id (a 32-bit integer)"),
    ]
    for (index, (record, message)) in cases.enumerated() {
        // The bad record is last and a step takes one example: found only when its batch came up, it
        // would have let the run train and save a checkpoint first.
        let data = try write(good + record + "\n" + #"{"input_ids": [17, 18]}"# + "\n", "ids\(index).jsonl", in: directory)
        let output = directory.appendingPathComponent("run\(index)")
        let result = runCLI(["train", "--model-config", config, "--train-file", data, "--output-dir", output.path, "--max-steps", "1",
                             "--per-device-train-batch-size", "1", "--save-steps", "1", "--validation-split", "0", "--eval-strategy", "no"])
        #expect(result.status == 1 && result.error.contains("\(data):\(message)"), "\(result.error)")
        #expect(!result.error.contains("\n"), "one line: \(result.error)")
        #expect(!FileManager.default.fileExists(atPath: output.appendingPathComponent("checkpoint-1").path))
    }
}

@Test func aValidationFileThatIsTheTrainingFileIsEvaluatedWhole() throws {
    let train = try sampleOfIdeas(from: 300, count: 30, name: "train.txt")
    let copy = try write(try String(contentsOfFile: train, encoding: .utf8), "copy.txt", in: try TestPaths.temporaryDirectory("copy"))
    let config = try microConfig()
    let root = try TestPaths.temporaryDirectory("same-validation")
    func evaluations(validationFile: String, _ name: String) throws -> (log: String, records: [String]) {
        let output = root.appendingPathComponent(name)
        let result = runCLI(["train", "--model-config", config, "--tokenizer", tokenizerDirectory, "--train-file", train, "--validation-file", validationFile,
                             "--output-dir", output.path, "--max-steps", "2", "--logging-steps", "1", "--eval-steps", "2", "--seed", "3"])
        try #require(result.status == 0, "\(result.error)")
        let records = try metrics(output).filter { $0["eval_loss"] != nil }.map { "\($0["eval_loss"] ?? .null) \($0["eval_tokens"] ?? .null)" }
        return (result.error, records)
    }
    let separate = try evaluations(validationFile: copy, "copy")
    #expect(separate.log.contains("training 30 examples"))
    // The same file, however it is spelled, is what an identical copy of it is: all of it, trained on and evaluated.
    for (spelling, name) in [(train, "same"), (URL(fileURLWithPath: train).deletingLastPathComponent().path + "/./train.txt", "spelled")] {
        let same = try evaluations(validationFile: spelling, name)
        #expect(same.log.contains("training 30 examples") && same.log.contains("--validation-file is the training file"), "\(same.log)")
        #expect(same.records == separate.records && !same.records.isEmpty, "\(same.records) vs \(separate.records)")
    }
}

@Test func tokenizePrintsOneLinePerRecordAndTrainingCountsTheBlankOnes() throws {
    let directory = try TestPaths.temporaryDirectory("records")
    func tokenize(_ arguments: [String]) -> [String] {
        let result = runCLI(["tokenize", "--tokenizer", tokenizerDirectory] + arguments)
        #expect(result.status == 0, "\(result.error)")
        return result.output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }
    let spaces = tokenize(["--text", "   "])[0]
    let jsonl = try write(#"{"text": "a"}"# + "\n" + #"{"text": ""}"# + "\n\n" + #"{"text": "   "}"# + "\n" + #"{"text": "\n\n\n"}"# + "\n"
                          + #"{"text": "b"}"# + "\n", "records.jsonl", in: directory)
    #expect(tokenize(["--file", jsonl]) == ["[64]", "[]", spaces, "[628, 198]", "[65]"])
    let text = try write("a\n\n   \nb\n", "lines.txt", in: directory)
    #expect(tokenize(["--file", text]) == ["[64]", "[]", spaces, "[65]"])
    let csv = try write("id,body\n1,a\n2,\n3,\"\n\n\n\"\n4,b\n", "rows.csv", in: directory)
    #expect(tokenize(["--file", csv, "--text-column", "body"]) == ["[64]", "[]", "[628, 198]", "[65]"])

    let train = try write("An app for dogs\n\n   \nA bank for robots\nTea delivered by drones\n", "train.txt", in: directory)
    let result = runCLI(["train", "--model-config", try microConfig(), "--tokenizer", tokenizerDirectory, "--train-file", train,
                         "--output-dir", directory.appendingPathComponent("run").path, "--max-steps", "1", "--validation-split", "0", "--eval-strategy", "no"])
    #expect(result.status == 0 && result.error.contains("skipped 2 blank examples in \(train)") && result.error.contains("training 3 examples"), "\(result.error)")
}

@Test func inputTextIsReadAsWrittenOrRefusedWithItsLine() throws {
    let directory = try TestPaths.temporaryDirectory("input-text")
    let mark: [UInt8] = [0xEF, 0xBB, 0xBF]
    // A byte-order mark is no part of the text, nor of a CSV header's first name.
    let plain = try write("Tea delivered by drones\n", "plain.txt", in: directory)
    let marked = try write(mark + Array("Tea delivered by drones\n".utf8), "marked.txt", in: directory)
    let ids = { (file: String) in runCLI(["tokenize", "--tokenizer", tokenizerDirectory, "--file", file]).output }
    #expect(ids(marked) == ids(plain) && !ids(plain).isEmpty)
    let markedCSV = try write(mark + Array("text,id\nAn app for dogs,1\nA bank for robots,2\n".utf8), "marked.csv", in: directory)
    let config = try microConfig()
    func train(_ file: String, _ name: String) -> (status: Int32, output: String, error: String) {
        runCLI(["train", "--model-config", config, "--tokenizer", tokenizerDirectory, "--train-file", file,
                "--output-dir", directory.appendingPathComponent(name).path, "--max-steps", "1", "--validation-split", "0", "--eval-strategy", "no"])
    }
    let csvRun = train(markedCSV, "csv")
    #expect(csvRun.status == 0 && csvRun.error.contains("training 2 examples"), "\(csvRun.error)")

    let latin1 = try write(Array("An app for dogs\nCaf".utf8) + [0xE9] + Array(" for robots\n".utf8), "latin1.txt", in: directory)
    let quote = try write("text,n\n\"Rockets, but cheaper,1\nTea by drone,2\nSay \"hi\",3\n", "quote.csv", in: directory)
    let unclosed = try write("text,n\nfine,1\n\"never closed,2\nmore,3\n", "unclosed.csv", in: directory)
    let cases = [(latin1, "\(latin1):2: is not valid UTF-8 text (at byte 4 of the line: 0xE9)"),
                 (quote, "\(quote):2: the quoted field that opens here closes on line 4 and has text after its closing quote"),
                 (unclosed, "\(unclosed):3: quoted field is not closed")]
    for (index, (file, message)) in cases.enumerated() {
        for result in [train(file, "bad\(index)"), runCLI(["tokenize", "--tokenizer", tokenizerDirectory, "--file", file])] {
            #expect(result.status == 1 && result.error.contains(message), "\(result.error)")
            #expect(!result.error.contains("\n"), "one line: \(result.error)")
        }
    }
}

@Test func filesThatAreNotFilesAreNamedPlainly() throws {
    let directory = try TestPaths.temporaryDirectory("not-files")
    for name in ["vocab.json", "merges.txt"] {
        let tokenizer = try tokenizerCopy("tokenizer-\(name)", in: directory)
        let path = tokenizer + "/" + name
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        let result = runCLI(["tokenize", "--tokenizer", tokenizer, "--text", "x"])
        #expect(result.status == 1 && result.error.contains("cannot read \(path): it is a directory"), "\(result.error)")
        #expect(!result.error.contains("NSCocoaErrorDomain") && !result.error.contains("\n"), "\(result.error)")
    }
    let noTokenizer = directory.appendingPathComponent("none").path
    let missing = runCLI(["tokenize", "--tokenizer", noTokenizer, "--text", "x"])
    #expect(missing.status == 1 && missing.error.contains("missing directory \(noTokenizer)"), "\(missing.error)")
    let data = directory.appendingPathComponent("data.txt").path
    try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: false)
    for arguments in [["tokenize", "--tokenizer", tokenizerDirectory, "--file", data], ["tokenize", "--tokenizer", tokenizerDirectory, "--file", data, "--benchmark"],
                      ["train", "--model-config", try microConfig(), "--tokenizer", tokenizerDirectory, "--train-file", data,
                       "--output-dir", directory.appendingPathComponent("run").path, "--max-steps", "1"]] {
        let result = runCLI(arguments)
        #expect(result.status == 1 && result.error.contains("\(data): is a directory, expected a data file"), "\(arguments): \(result.error)")
    }
    let train = try write("An app for dogs\n", "train.txt", in: directory)
    let cacheUnderAFile = train + "/cache"
    let result = runCLI(["train", "--model-config", try microConfig(), "--tokenizer", tokenizerDirectory, "--train-file", train,
                         "--cache-dir", cacheUnderAFile, "--output-dir", directory.appendingPathComponent("run").path, "--max-steps", "1"])
    #expect(result.status == 1 && result.error.contains("\(cacheUnderAFile): cannot be created as the token cache directory: Not a directory"), "\(result.error)")
    #expect(!result.error.contains("NSCocoaErrorDomain") && !result.error.contains("\n"), "\(result.error)")
}

/// `--config-overrides` as run_clm.py has it: the model a command writes keeps the overridden
/// fields, and a bad override is a usage error (exit 2, which launch/train never retries) on one line.
@Test func configOverridesAreSavedAndBadOnesAreUsageErrors() throws {
    let directory = try TestPaths.temporaryDirectory("config-overrides")
    func savedConfig(_ path: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path).appendingPathComponent("config.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }
    let initialised = directory.appendingPathComponent("init").path
    let made = runCLI(["init", "--output-dir", initialised, "--config-overrides", "resid_pdrop=0.25,attn_pdrop=0,n_layer=1"])
    #expect(made.status == 0, "\(made.error)")
    let madeConfig = try savedConfig(initialised)
    #expect(madeConfig["resid_pdrop"] as? Double == 0.25 && madeConfig["attn_pdrop"] as? Double == 0 && madeConfig["n_layer"] as? Int == 1)

    let train = try write("An app for dogs\nA bank for robots\nTea delivered by drones\n", "train.txt", in: directory)
    let run = directory.appendingPathComponent("run").path
    let trained = runCLI(["train", "--model-config", try microConfig(), "--config-overrides", "embd_pdrop=0.05,resid_pdrop=0",
                          "--tokenizer", tokenizerDirectory, "--train-file", train, "--output-dir", run, "--max-steps", "2",
                          "--validation-split", "0", "--eval-strategy", "no", "--save-steps", "1"])
    #expect(trained.status == 0, "\(trained.error)")
    for saved in [run, run + "/checkpoint-1"] {
        let config = try savedConfig(saved)
        #expect(config["embd_pdrop"] as? Double == 0.05 && config["resid_pdrop"] as? Double == 0 && config["attn_pdrop"] as? Double == 0.1, "\(saved)")
    }

    let batch = try write(#"{"input_ids": [[1, 2, 3]]}"#, "batch.json", in: directory)
    let cases: [([String], String)] = [
        (["init", "--output-dir", directory.appendingPathComponent("a").path, "--config-overrides", "dropout=0.1"],
         "--config-overrides: dropout is not a field of the model config"),
        (["forward-backward", "--model-name-or-path", tinyModel, "--batch", batch, "--output", directory.appendingPathComponent("o.safetensors").path,
          "--config-overrides", "n_embd=16"], "--config-overrides: changes the shape of the weights in \(tinyModel)"),
        (["train", "--model-name-or-path", run, "--train-file", train, "--output-dir", directory.appendingPathComponent("b").path,
          "--config-overrides", "attn_pdrop=often"], "--config-overrides: attn_pdrop takes a number, got 'often'"),
    ]
    for (arguments, message) in cases {
        let result = runCLI(arguments)
        #expect(result.status == 2 && result.error.contains(message) && !result.error.contains("\n"), "\(arguments): \(result.error)")
    }
    #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("a").path))
}

/// A model whose config asks for heavy dropout evaluates, generates and runs forward-backward
/// exactly as the same weights without it: dropout is for training steps only (forward-backward
/// applies it when asked with --dropout).
@Test func dropoutIsOffOutsideTraining() throws {
    let directory = try TestPaths.temporaryDirectory("dropout-off")
    let heavy = directory.appendingPathComponent("heavy")
    try FileManager.default.createDirectory(at: heavy, withIntermediateDirectories: true)
    for name in ["model.safetensors", "generation_config.json"] {
        try FileManager.default.copyItem(atPath: tinyModel + "/" + name, toPath: heavy.appendingPathComponent(name).path)
    }
    var config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: tinyModel + "/config.json"))) as? [String: Any])
    for key in ["embd_pdrop", "attn_pdrop", "resid_pdrop"] { config[key] = 0.5 }
    try JSONSerialization.data(withJSONObject: config).write(to: heavy.appendingPathComponent("config.json"))

    let batch = fixtures.appendingPathComponent("batch.json").path
    func forwardBackward(_ model: String, _ name: String, _ extra: [String] = []) throws -> Data {
        let output = directory.appendingPathComponent(name).path
        let result = runCLI(["forward-backward", "--model-name-or-path", model, "--batch", batch, "--output", output] + extra)
        #expect(result.status == 0, "\(result.error)")
        return try Data(contentsOf: URL(fileURLWithPath: output))
    }
    #expect(try forwardBackward(tinyModel, "plain.safetensors") == forwardBackward(heavy.path, "heavy.safetensors"))
    #expect(try forwardBackward(tinyModel, "plain-flag.safetensors", ["--dropout"]) != forwardBackward(heavy.path, "heavy-flag.safetensors", ["--dropout"]),
            "--dropout applies the config's dropout")

    let generate = { (model: String) in runCLI(["generate", "--model-name-or-path", model, "--prompt-ids", "1,2,3", "--greedy", "--max-new-tokens", "12", "--json"]) }
    let plainIdeas = generate(tinyModel), heavyIdeas = generate(heavy.path)
    #expect(plainIdeas.status == 0 && plainIdeas.output == heavyIdeas.output && !plainIdeas.output.isEmpty, "\(heavyIdeas.error)")

    let ideas = try write("An app for dogs\nA bank for robots\nTea delivered by drones\n", "ideas.txt", in: directory)
    let evaluate = { (overrides: String) in
        runCLI(["evaluate", "--model-name-or-path", tinyModel, "--tokenizer", tokenizerDirectory, "--validation-file", ideas, "--config-overrides", overrides]).output
    }
    let plainLoss = evaluate("embd_pdrop=0,attn_pdrop=0,resid_pdrop=0")
    #expect(plainLoss.contains("eval_loss") && plainLoss == evaluate("embd_pdrop=0.5,attn_pdrop=0.5,resid_pdrop=0.5"), "\(plainLoss)")
}
