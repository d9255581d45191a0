import Foundation
import GPT2
import SafeTensors

/// One forward and backward pass on a batch from a JSON file, with everything written out for a
/// comparison with PyTorch (the role of llm.c's test harness).
enum ForwardBackwardCommand: Command {
    static let spec = CommandSpec(
        name: "forward-backward",
        summary: "Run one forward and backward pass and write the loss, logits and every gradient to a safetensors file.",
        flags: [
            .option("--model-name-or-path", "DIR", "model directory as save_pretrained writes it"),
            .option("--batch", "FILE", "JSON with input_ids and optionally attention_mask and labels (rows of equal length)"),
            .option("--output", "FILE", "safetensors file to write: loss [1], logits [B, T, V] and grad.NAME for every parameter"),
            .toggle("--dropout", "apply the config's dropout as training does (off by default, as in evaluation)"),
            .option("--seed", "N", "with --dropout: the run seed the masks are keyed by", default: "42"),
            .option("--step", "N", "with --dropout: the optimiser step the masks are keyed by (rows are examples 0, 1, ... of its batch)", default: "0"),
            InitCommand.configOverridesFlag,
        ])

    struct BatchFile: Decodable {
        let input_ids: [[Int]]
        let attention_mask: [[Int]]?
        let labels: [[Int]]?
    }

    static func loadBatch(path: String) throws -> Batch {
        guard let data = FileManager.default.contents(atPath: path) else { throw CLIError.failure("\(path): no such file") }
        let file: BatchFile
        do {
            file = try JSONDecoder().decode(BatchFile.self, from: data)
        } catch {
            throw CLIError.failure("\(path): expected a JSON object with input_ids (and optionally attention_mask, labels) as arrays of integer rows")
        }
        do {
            return try Batch(inputIDs: file.input_ids, attentionMask: file.attention_mask, labels: file.labels)
        } catch let error as ModelError {
            throw CLIError.failure("\(path): \(error)")
        }
    }

    static func run(_ arguments: ParsedArguments, console: Console) throws {
        let directory = try arguments.required("--model-name-or-path")
        let batchPath = try arguments.required("--batch")
        let outputPath = try arguments.required("--output")
        guard !FileManager.default.fileExists(atPath: outputPath) else {
            throw CLIError.refusal("\(outputPath): exists; give a new --output (forward-backward never writes over a file)")
        }
        guard let seed = UInt64(try arguments.required("--seed")), let step = Int(try arguments.required("--step")), step >= 0 else {
            throw CLIError.usage(command: spec.name, message: "--seed and --step must be non-negative integers")
        }
        let (model, report) = try GPT2Model.load(directory: directory)
        InfoCommand.warnUnexpected(report, console: console)
        if let overrides = arguments.string("--config-overrides") { try model.applyConfigOverrides(overrides, directory: directory) }
        let batch = try loadBatch(path: batchPath)
        let loss: LossSum
        do {
            loss = try model.forward(batch, dropout: arguments.isSet("--dropout") ? DropoutKey(seed: seed, step: step, firstExample: 0) : nil)
        } catch let error as ModelError {
            throw CLIError.failure("\(batchPath): \(error)")
        }
        guard loss.count > 0 else { throw CLIError.failure("\(batchPath): no label is left to predict after the shift (all are -100)") }
        model.zeroGradients()
        model.backward(lossScale: 1 / Float(loss.count))
        var lossValue = [Float(loss.mean)]
        let config = model.config
        try lossValue.withUnsafeMutableBufferPointer { lossBuffer in
            let extra = [
                FloatTensor(name: "loss", shape: [1], values: UnsafeBufferPointer(lossBuffer)),
                FloatTensor(name: "logits", shape: [batch.batchSize, batch.sequenceLength, config.vocabSize], values: model.logits),
            ]
            try model.saveWeights(to: outputPath, buffers: [("grad.", model.gradients)], extra: extra,
                                  metadata: ["loss_tokens": String(loss.count)])
        }
        console.print("loss: \(loss.mean)")
        console.print("tokens: \(loss.count)")
        console.print("wrote: \(outputPath)")
    }
}
