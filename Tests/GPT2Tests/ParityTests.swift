import Foundation
import GPT2
import SafeTensors
import Testing
import TestSupport

/// Loss, logits and every gradient against `transformers` (fixtures from scripts/make_model_fixtures.py).
struct ParityTests {
    static let tolerance = (loss: 1e-5, logits: 1e-5, gradient: 1e-4)

    static func loadBatch(_ name: String) throws -> Batch {
        struct File: Decodable { let input_ids: [[Int]]; let attention_mask: [[Int]]?; let labels: [[Int]]? }
        let data = try Data(contentsOf: TestPaths.modelFixtures.appendingPathComponent("\(name).json"))
        let file = try JSONDecoder().decode(File.self, from: data)
        return try Batch(inputIDs: file.input_ids, attentionMask: file.attention_mask, labels: file.labels)
    }

    /// Checks everything a forward-backward output holds against the reference of `batchName`.
    static func expectMatchesReference(loss: Float, logits: [Float], gradient: (String) throws -> [Float], batchName: String) throws {
        let reference = try SafeTensorsFile(path: TestPaths.modelFixtures.appendingPathComponent("\(batchName).reference.safetensors").path)
        let referenceLoss = try reference.floats("loss")[0]
        #expect(abs(Double(loss - referenceLoss)) / Double(abs(referenceLoss)) < tolerance.loss, "loss \(loss) vs \(referenceLoss)")
        let logitsError = relativeError(logits, try reference.floats("logits"))
        #expect(logitsError < tolerance.logits, "logits relative error \(logitsError)")
        let gradientNames = reference.tensors.map(\.name).filter { $0.hasPrefix("grad.") }
        #expect(gradientNames.count == 2 + 12 * 2 + 2, "every parameter has a reference gradient")
        for name in gradientNames {
            let error = relativeError(try gradient(String(name.dropFirst(5))), try reference.floats(name))
            #expect(error < tolerance.gradient, "\(name) relative error \(error)")
        }
    }

    @Test(arguments: ["batch", "batch_default_labels"])
    func forwardAndBackwardMatchTransformers(batchName: String) throws {
        let (model, report) = try GPT2Model.load(directory: TestPaths.modelFixtures.appendingPathComponent("tiny-gpt2").path)
        #expect(report.unexpected.isEmpty)
        let batch = try Self.loadBatch(batchName)
        let loss = try model.forward(batch)
        model.zeroGradients()
        model.backward(lossScale: 1 / Float(loss.count))
        try Self.expectMatchesReference(loss: Float(loss.mean), logits: Array(model.logits), gradient: { name in
            let tensor = try #require(model.layout.tensor(named: name))
            return Array(model.gradients.buffer[tensor.range])
        }, batchName: batchName)
    }

    @Test func backwardAccumulatesIntoTheGradients() throws {
        let (model, _) = try GPT2Model.load(directory: TestPaths.modelFixtures.appendingPathComponent("tiny-gpt2").path)
        let batch = try Self.loadBatch("batch")
        let loss = try model.forward(batch)
        model.zeroGradients()
        model.backward(lossScale: 1 / Float(loss.count))
        let once = model.gradients.array
        try model.forward(batch)
        model.backward(lossScale: 1 / Float(loss.count))
        #expect(relativeError(model.gradients.array, once.map { 2 * $0 }) < 1e-6)
    }

    @Test func paddingDoesNotChangeTheRealTokensLogits() throws {
        let (model, _) = try GPT2Model.load(directory: TestPaths.modelFixtures.appendingPathComponent("tiny-gpt2").path)
        let tokens = [5, 17, 250, 3, 99]
        try model.forward(try Batch(inputIDs: [tokens]))
        let alone = Array(model.logits)
        try model.forward(try Batch(inputIDs: [tokens + [300, 300, 300]], attentionMask: [[1, 1, 1, 1, 1, 0, 0, 0]]))
        let padded = Array(model.logits.prefix(alone.count))
        #expect(relativeError(padded, alone) < 1e-6)
    }
}
