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
    let cases: [([String], Int32, String)] = [
        (["train-everything"], 2, "unknown command 'train-everything'"),
        (["info", tinyModel, "--colour"], 2, "unknown flag '--colour'"),
        (["forward-backward", "--model-name-or-path", tinyModel], 2, "--batch is required"),
        (["forward-backward", "--model-name-or-path"], 2, "--model-name-or-path needs a value"),
        (["info", "/no/such/dir"], 1, "/no/such/dir: no such file or directory"),
        (["forward-backward", "--model-name-or-path", tinyModel, "--batch", "/no/batch.json", "--output", "/tmp/x"], 1, "/no/batch.json: no such file"),
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
