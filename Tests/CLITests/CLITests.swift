import CLI
import Foundation
import SafeTensors
import Testing
import TestSupport

/// Runs the CLI in-process and captures what it prints.
func runCLI(_ arguments: [String]) -> (status: Int32, output: String, error: String) {
    final class Capture: @unchecked Sendable { var output: [String] = []; var error: [String] = [] }
    let capture = Capture()
    let console = Console(output: { capture.output.append($0) }, error: { capture.error.append($0) })
    let status = GPT2DDP.main(arguments: arguments, console: console)
    return (status, capture.output.joined(separator: "\n"), capture.error.joined(separator: "\n"))
}

let fixtures = TestPaths.modelFixtures
let tinyModel = fixtures.appendingPathComponent("tiny-gpt2").path

@Test func forwardBackwardWritesWhatTransformersComputes() throws {
    let output = try TestPaths.temporaryDirectory("cli").appendingPathComponent("out.safetensors").path
    let result = runCLI(["forward-backward", "--model-name-or-path", tinyModel,
                         "--batch", fixtures.appendingPathComponent("batch.json").path, "--output", output])
    #expect(result.status == 0, "\(result.error)")
    #expect(result.output.contains("loss: 6.1727"))
    let written = try SafeTensorsFile(path: output)
    let reference = try SafeTensorsFile(path: fixtures.appendingPathComponent("batch.reference.safetensors").path)
    #expect(Set(written.tensors.map(\.name)) == Set(reference.tensors.map(\.name)), "same names as Hugging Face's")
    for tensor in reference.tensors {
        #expect(written.info(tensor.name)?.shape == tensor.shape, "\(tensor.name)")
        let tolerance = tensor.name.hasPrefix("grad.") ? 1e-4 : 1e-5
        let error = relativeError(try written.floats(tensor.name), try reference.floats(tensor.name))
        #expect(error < tolerance, "\(tensor.name) relative error \(error)")
    }
}

/// Every matmul path this CPU has, forced through GPT2_DDP_MATMUL in the real executable, writes
/// the same loss, logits and gradients, bit for bit (the fixture's parity is checked above); a
/// path the CPU lacks or an unknown one is a one-line error.
@Test func everyMatmulPathWritesTheSameForwardBackward() throws {
    let directory = try TestPaths.temporaryDirectory("matmul-paths")
    let info = try runProcess(TestPaths.executable, ["info", "--cpu"])
    #expect(info.status == 0 && info.output.contains("matmul path avx2: tile 6x16") && info.output.contains("matmul: "), "\(info.output)")
    let runnable = ["avx2", "avx512"].filter { info.output.contains("matmul path \($0):") }
    var outputs: [Data] = []
    for path in runnable {
        let output = directory.appendingPathComponent("\(path).safetensors").path
        let result = try runProcess(TestPaths.executable, ["forward-backward", "--model-name-or-path", tinyModel, "--batch",
                                                           fixtures.appendingPathComponent("batch.json").path, "--output", output],
                                    environment: ["GPT2_DDP_MATMUL": path])
        #expect(result.status == 0, "\(path): \(result.error)")
        outputs.append(try Data(contentsOf: URL(fileURLWithPath: output)))
        let forced = try runProcess(TestPaths.executable, ["info", "--cpu"], environment: ["GPT2_DDP_MATMUL": path])
        #expect(forced.output.contains("matmul: \(path)\n") || forced.output.hasSuffix("matmul: \(path)"), "\(forced.output)")
    }
    #expect(Set(outputs).count == 1, "paths \(runnable) agree")
    if runnable.count < 2 { print("only \(runnable) compared: this CPU cannot run the AVX-512 path") }
    for (name, message) in [("sse", "GPT2_DDP_MATMUL=sse: not a matmul path"), runnable.contains("avx512") ? nil : ("avx512", "cannot run it")].compactMap({ $0 }) {
        let refused = try runProcess(TestPaths.executable, ["info", tinyModel], environment: ["GPT2_DDP_MATMUL": name])
        #expect(refused.status != 0 && refused.error.contains(message) && refused.error.split(separator: "\n").count == 1, "\(refused.error)")
    }
}

@Test func infoDescribesAModelDirectory() {
    let result = runCLI(["info", tinyModel])
    #expect(result.status == 0)
    #expect(result.output.contains("n_layer=2 n_head=4 n_embd=32"))
    #expect(result.output.contains("parameters: 36128"))
    #expect(result.output.contains("transformer.h.1.mlp.c_fc.weight F32 [32, 128]"))
}

@Test func helpIsShownForEveryCommand() {
    let top = runCLI(["--help"])
    #expect(top.status == 0 && top.output.contains("forward-backward") && top.output.contains("info"))
    let command = runCLI(["forward-backward", "--help"])
    #expect(command.status == 0 && command.output.contains("--model-name-or-path DIR"))
}

@Test func badArgumentsGiveOneLineErrors() throws {
    // forward-backward refuses an --output that exists, so this one is new.
    let output = try TestPaths.temporaryDirectory("bad-arguments").appendingPathComponent("out.safetensors").path
    let cases: [([String], Int32, String)] = [
        (["train-everything"], 2, "unknown command 'train-everything'"),
        (["info", tinyModel, "--colour"], 2, "unknown flag '--colour'"),
        (["forward-backward", "--model-name-or-path", tinyModel], 2, "--batch is required"),
        (["forward-backward", "--model-name-or-path"], 2, "--model-name-or-path needs a value"),
        (["info", "/no/such/dir"], 1, "/no/such/dir: no such file or directory"),
        (["forward-backward", "--model-name-or-path", tinyModel, "--batch", "/no/batch.json", "--output", output], 1, "/no/batch.json: no such file"),
    ]
    for (arguments, status, message) in cases {
        let result = runCLI(arguments)
        #expect(result.status == status, "\(arguments)")
        #expect(result.error.contains(message), "\(arguments): \(result.error)")
        #expect(!result.error.contains("\n"), "one line: \(result.error)")
    }
}

@Test func badBatchesAreReportedWithTheFileName() throws {
    let directory = try TestPaths.temporaryDirectory("cli")
    for (json, message) in [("{\"input_ids\": [[1, 2], [3]]}", "equal length"),
                            ("{\"input_ids\": [[1, 999]]}", "outside the vocabulary"),
                            ("{\"input_ids\": [[1, 2]], \"labels\": [[-100, -100]]}", "all are -100"),
                            ("not json", "expected a JSON object")] {
        let path = directory.appendingPathComponent("batch.json").path
        try Data(json.utf8).write(to: URL(fileURLWithPath: path))
        let result = runCLI(["forward-backward", "--model-name-or-path", tinyModel, "--batch", path,
                             "--output", directory.appendingPathComponent("o.safetensors").path])
        #expect(result.status == 1)
        #expect(result.error.contains(path) && result.error.contains(message), "\(result.error)")
    }
}

/// The real executable: corrupt input ends with one line on standard error and exit 1, not a trap.
@Test func executableFailsCleanlyOnACorruptCheckpoint() throws {
    let directory = try TestPaths.temporaryDirectory("corrupt")
    try FileManager.default.copyItem(atPath: tinyModel + "/config.json", toPath: directory.appendingPathComponent("config.json").path)
    let weights = try Data(contentsOf: URL(fileURLWithPath: tinyModel + "/model.safetensors"))
    try weights.prefix(weights.count / 2).write(to: directory.appendingPathComponent("model.safetensors"))
    let result = try runProcess(TestPaths.executable, ["info", directory.path])
    #expect(result.status == 1)
    #expect(result.error.hasPrefix("gpt2-ddp info: error: ") && result.error.contains("model.safetensors: not a valid safetensors file"), "\(result.error)")
    #expect(result.error.split(separator: "\n").count == 1)
}

@Test func tokenizePrintsIdsAndDecodes() throws {
    let tokenizer = TestPaths.sharedData.appendingPathComponent("gpt2-tokenizer").path
    let ids = runCLI(["tokenize", "--tokenizer", tokenizer, "--text", "Hello, my dog is cute"])
    #expect(ids.status == 0 && ids.output == "[15496, 11, 616, 3290, 318, 13779]")
    let recipe = runCLI(["tokenize", "--tokenizer", tokenizer, "--add-token", "<|EOS|>", "--add-token", "<|pad|>",
                         "--text", "<|endoftext|> An idea <|EOS|><|pad|>"])
    #expect(recipe.output == "[50256, 1052, 2126, 220, 50257, 50258]")
    let decoded = runCLI(["tokenize", "--tokenizer", tokenizer, "--decode", "--text", "[15496, 11, 616, 3290, 318, 13779]"])
    #expect(decoded.output == "Hello, my dog is cute")
    let directory = try TestPaths.temporaryDirectory("tokenize")
    let records = directory.appendingPathComponent("t.jsonl").path
    try #"{"body": "two\nlines"}"#.write(toFile: records, atomically: true, encoding: .utf8)
    #expect(runCLI(["tokenize", "--tokenizer", tokenizer, "--file", records, "--text-field", "body"]).output == "[11545, 198, 6615]")
    let lines = directory.appendingPathComponent("t.txt").path
    try "a\n\nb\n".write(toFile: lines, atomically: true, encoding: .utf8)
    #expect(runCLI(["tokenize", "--tokenizer", tokenizer, "--file", lines]).output == "[64]\n[]\n[65]", "one array per line")
    let missing = runCLI(["tokenize", "--tokenizer", "/no/tokenizer", "--text", "x"])
    #expect(missing.status == 1 && missing.error.contains("/no/tokenizer") && !missing.error.contains("\n"))
    let both = runCLI(["tokenize", "--tokenizer", tokenizer, "--text", "x", "--file", lines])
    #expect(both.status == 2 && both.error.contains("exactly one of --text and --file"))
}

@Test func generatePrintsSequencesAndRefusesBadCounts() throws {
    let json = runCLI(["generate", "--model-name-or-path", tinyModel, "--prompt-ids", "300", "--greedy", "--max-new-tokens", "30", "--json"])
    #expect(json.status == 0, "\(json.error)")
    #expect(json.output.hasPrefix(#"{"ids":[90,242,242,246,234,234,160,19"#), "\(json.output)")
    let bfloat16 = runCLI(["generate", "--model-name-or-path", tinyModel, "--prompt-ids", "300", "--greedy", "--max-new-tokens", "30", "--json",
                           "--weights-dtype", "bf16"])
    #expect(bfloat16.status == 0 && bfloat16.output == json.output, "this fixture's top-2 margins exceed bf16's perturbation: \(bfloat16.error)")
    let several = runCLI(["generate", "--model-name-or-path", tinyModel, "--prompt-ids", "1,2", "--num-return-sequences", "3", "--batch", "2",
                          "--json", "--max-length", "10"])
    #expect(several.status == 0 && several.output.split(separator: "\n").count == 3)
    for (arguments, message) in [(["--num-return-sequences", "0"], "--num-return-sequences must be a positive integer"),
                                 (["--max-new-tokens", "-3"], "--max-new-tokens must be positive"),
                                 (["--top-p", "1.5"], "--top-p must be in (0, 1]"),
                                 (["--prompt-ids", "1,x"], "--prompt-ids expects comma-separated integers"),
                                 (["--weights-dtype", "fp16"], "--weights-dtype must be fp32 or bf16, not 'fp16'")] {
        let prompt = arguments.contains("--prompt-ids") ? [] : ["--prompt-ids", "1"]
        let result = runCLI(["generate", "--model-name-or-path", tinyModel, "--json"] + prompt + arguments)
        #expect(result.status == 2 && result.error.contains(message), "\(arguments): \(result.error)")
    }
    let long = runCLI(["generate", "--model-name-or-path", tinyModel, "--json", "--prompt-ids", Array(repeating: "1", count: 40).joined(separator: ",")])
    #expect(long.status == 1 && long.error.contains("context (n_positions) is 32"))
    let empty = try TestPaths.temporaryDirectory("generate")
    let noWeights = runCLI(["generate", "--model-name-or-path", empty.path, "--prompt-ids", "1", "--json"])
    #expect(noWeights.status == 1 && noWeights.error.contains("config.json: no such file"), "\(noWeights.error)")
}

@Test func benchPrintsOneJSONObjectPerMeasurement() throws {
    let result = runCLI(["bench", "--model-config", "tiny", "--batch-size", "2", "--seq-len", "8", "--num-threads", "2", "--steps", "1", "--json"])
    #expect(result.status == 0, "\(result.error)")
    let objects = try result.output.split(separator: "\n").map { line in
        try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }
    #expect(objects.map { $0["what"] as? String } == ["peak", "train_step"])
    let step = try #require(objects.last)
    #expect(step["batch_size"] as? Int == 2 && step["seq_len"] as? Int == 8 && step["num_threads"] as? Int == 2)
    for field in ["ms_per_step", "tokens_per_second", "gflops_per_second", "fraction_of_peak"] {
        #expect((step[field] as? Double ?? 0) > 0, "\(field)")
    }
}

@Test func benchTimesGenerationAgainstTheMemoryBandwidth() throws {
    let result = runCLI(["bench", "--generate", "--model-config", "tiny", "--batch-size", "2", "--max-new-tokens", "5", "--steps", "1", "--json"])
    #expect(result.status == 0, "\(result.error)")
    let objects = try result.output.split(separator: "\n").map { line in
        try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }
    #expect(objects.map { $0["what"] as? String } == ["memory_bandwidth", "generate", "generate"])
    #expect((objects[0]["gb_per_second"] as? Double ?? 0) > 0)
    #expect(objects.dropFirst().map { $0["weights_dtype"] as? String } == ["fp32", "bf16"])
    for line in objects.dropFirst() {
        #expect(line["batch_size"] as? Int == 2 && line["new_tokens"] as? Int == 5 && line["num_threads"] as? Int == 1)
        for field in ["ms_per_step", "tokens_per_second", "bandwidth_limit_tokens_per_second", "fraction_of_bandwidth_limit"] {
            #expect((line[field] as? Double ?? 0) > 0, "\(field)")
        }
    }
}
