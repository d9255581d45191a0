import Foundation
@testable import GPT2
@testable import Kernels
import TestSupport
import Testing

/// Random123's known-answer vectors for philox4x32 with 10 rounds (kat_vectors: counter, key, result).
@Test func philoxMatchesItsPublishedTestVectors() {
    let vectors: [(SIMD4<UInt32>, SIMD2<UInt32>, SIMD4<UInt32>)] = [
        (SIMD4(0, 0, 0, 0), SIMD2(0, 0), SIMD4(0x6627_E8D5, 0xE169_C58D, 0xBC57_AC4C, 0x9B00_DBD8)),
        (SIMD4(repeating: .max), SIMD2(repeating: .max), SIMD4(0x408F_276D, 0x41C8_3B0E, 0xA20B_C7C6, 0x6D54_51FD)),
        (SIMD4(0x243F_6A88, 0x85A3_08D3, 0x1319_8A2E, 0x0370_7344), SIMD2(0xA409_3822, 0x299F_31D0),
         SIMD4(0xD16C_FE09, 0x94FD_CCEB, 0x5001_E420, 0x2412_6EA1)),
    ]
    for (counter, key, expected) in vectors {
        #expect(Philox4x32.block(counter: counter, key: key) == expected, "counter \(counter) key \(key)")
    }
}

/// Over 10⁶ elements the dropped share is within 4 binomial standard deviations of p, and every
/// kept element is scaled by exactly 1/(1 - p).
@Test(arguments: [0.1, 0.5])
func dropsTheConfiguredShareAndScalesTheRest(probability: Double) {
    let count = 1_000_000
    let values = FloatBuffer(count: count)
    for i in 0..<count { values[i] = 1 }
    let mask = DropoutMask(probability: probability, seed: 1234, step: 7, site: .attentionResidual, layer: 3)
    Kernels.dropout(values.pointer, mask: mask, examples: 4, firstExample: 16, elementsPerExample: count / 4)
    let dropped = values.array.filter { $0 == 0 }.count
    let deviation = (Double(count) * probability * (1 - probability)).squareRoot()
    #expect(abs(Double(dropped) - Double(count) * probability) < 4 * deviation, "dropped \(dropped) of \(count) at p = \(probability)")
    let scale = Float(1 / (1 - probability))
    #expect(values.array.allSatisfy { $0 == 0 || $0 == scale })
}

/// A mask is a function of the element's position only: applying it in pieces that start
/// anywhere (as rows of another length would) gives the same values as in one pass, and another
/// step, example, site or layer gives another mask.
@Test func aMaskDependsOnlyOnWhereTheElementIs() {
    let count = 1000
    func masked(_ mask: DropoutMask, example: Int = 2, pieces: [Int] = [1000]) -> [Float] {
        let values = FloatBuffer(count: count)
        for i in 0..<count { values[i] = Float(i + 1) }
        var first = 0
        for piece in pieces {
            mask.apply(values.pointer + first, count: piece, example: example, first: first)
            first += piece
        }
        return values.array
    }
    let mask = DropoutMask(probability: 0.3, seed: 99, step: 4, site: .attention, layer: 1)
    let whole = masked(mask)
    #expect(masked(mask, pieces: [3, 13, 17, 64, 1, 902]) == whole)
    #expect(masked(mask, pieces: [500, 500]) == whole)
    #expect(masked(mask, example: 3) != whole)
    #expect(masked(DropoutMask(probability: 0.3, seed: 99, step: 5, site: .attention, layer: 1)) != whole)
    #expect(masked(DropoutMask(probability: 0.3, seed: 99, step: 4, site: .mlpResidual, layer: 1)) != whole)
    #expect(masked(DropoutMask(probability: 0.3, seed: 99, step: 4, site: .attention, layer: 0)) != whole)
    #expect(masked(DropoutMask(probability: 0.3, seed: 100, step: 4, site: .attention, layer: 1)) != whole)
    #expect(masked(DropoutMask(probability: 1, seed: 99, step: 4, site: .attention, layer: 1)).allSatisfy { $0 == 0 })
}

/// A small model with every dropout probability at `probability`.
private func dropoutModel(probability: Double, seed: UInt64 = 7) throws -> GPT2Model {
    var config = GPT2Config(vocabSize: 13, nPositions: 8, nEmbd: 8, nLayer: 2, nHead: 2,
                            embdPdrop: probability, attnPdrop: probability, residPdrop: probability)
    config.initializerRange = 0.4  // large enough that every path carries a visible gradient
    let model = try GPT2Model.randomlyInitialized(config: config, seed: seed)
    var generator = SeededGenerator(seed: 99)
    // Biases and LayerNorm parameters start at 0 and 1; perturb them so their paths are exercised too.
    for i in 0..<model.parameterCount { model.parameters[i] += Float(generator.nextNormal() * 0.1) }
    return model
}

private let paddedBatch = try! Batch(inputIDs: [[1, 5, 9, 12, 0, 3], [7, 7, 2, 11, 4, 4]],
                                     attentionMask: [[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])

/// With the masks held fixed (the same key), backward is the gradient of the forward pass:
/// central finite differences at a few positions of every tensor.
@Test func backwardWithDropoutMatchesFiniteDifferences() throws {
    let model = try dropoutModel(probability: 0.2)
    let key = DropoutKey(seed: 3, step: 5, firstExample: 4)
    let loss = try model.forward(paddedBatch, dropout: key)
    model.zeroGradients()
    model.backward(lossScale: 1 / Float(loss.count))
    let analytic = model.gradients.array
    // Dropout changes the loss (so the masks are in the pass being checked).
    #expect(abs(try model.forward(paddedBatch).mean - loss.mean) > 1e-3)

    let step: Float = 1e-2
    var checked = 0
    for tensor in model.layout.tensors {
        for position in Set([0, tensor.count - 1, tensor.count / 2, tensor.count / 3]) {
            let index = tensor.offset + position
            let original = model.parameters[index]
            model.parameters[index] = original + step
            let plus = try model.forward(paddedBatch, dropout: key).mean
            model.parameters[index] = original - step
            let minus = try model.forward(paddedBatch, dropout: key).mean
            model.parameters[index] = original
            let numeric = (plus - minus) / Double(2 * step)
            #expect(abs(numeric - Double(analytic[index])) <= 2e-3 + 1e-2 * abs(numeric),
                    "\(tensor.name)[\(position)]: numeric \(numeric) vs analytic \(analytic[index])")
            checked += 1
        }
    }
    #expect(checked > 60)
    #expect(analytic.map { abs($0) }.max()! > 0.05)
}

private func lossAndGradients(_ model: GPT2Model, _ batch: Batch, _ key: DropoutKey?) throws -> (LossSum, [Float]) {
    let loss = try model.forward(batch, dropout: key)
    model.zeroGradients()
    model.backward(lossScale: 1)
    return (loss, model.gradients.array)
}

/// Probability 0 with a key is exactly the pass without dropout; without a key (evaluation) the
/// config's dropout does not apply.
@Test func dropoutOffIsThePassWithoutIt() throws {
    let key = DropoutKey(seed: 1, step: 0, firstExample: 0)
    let off = try dropoutModel(probability: 0)
    let (lossWithKey, gradientsWithKey) = try lossAndGradients(off, paddedBatch, key)
    let (lossWithout, gradientsWithout) = try lossAndGradients(off, paddedBatch, nil)
    #expect(lossWithKey == lossWithout && gradientsWithKey == gradientsWithout)

    let on = try dropoutModel(probability: 0.1)
    let (evaluation, _) = try lossAndGradients(on, paddedBatch, nil)
    #expect(evaluation == lossWithout, "same weights, no key: no dropout")
    let (training, _) = try lossAndGradients(on, paddedBatch, key)
    #expect(training != evaluation)
}

/// The same examples at the same places of the global batch give the same masks however they are
/// grouped into micro-batches, padded to whatever length, with any thread count.
@Test func masksDoNotDependOnTheSplitThePaddingOrTheThreads() throws {
    let model = try dropoutModel(probability: 0.1)
    let rows: [[Int]] = [[1, 5, 9, 12, 0, 3], [7, 7, 2, 11], [4, 4, 8, 1, 2], [3, 10, 6]]
    func batch(_ rows: ArraySlice<[Int]>) throws -> Batch {
        let length = rows.map(\.count).max()!
        return try Batch(inputIDs: rows.map { $0 + Array(repeating: 0, count: length - $0.count) },
                         attentionMask: rows.map { Array(repeating: 1, count: $0.count) + Array(repeating: 0, count: length - $0.count) })
    }
    let (wholeLoss, wholeGradients) = try lossAndGradients(model, try batch(rows[...]), DropoutKey(seed: 9, step: 2, firstExample: 0))
    var splitLoss = 0.0
    var splitGradients = [Float](repeating: 0, count: model.parameterCount)
    for (first, part) in [(0, rows[0..<1]), (1, rows[1..<3]), (3, rows[3..<4])] {
        let (loss, gradients) = try lossAndGradients(model, try batch(part), DropoutKey(seed: 9, step: 2, firstExample: first))
        splitLoss += loss.sum
        for i in gradients.indices { splitGradients[i] += gradients[i] }
    }
    #expect(abs(splitLoss - wholeLoss.sum) < 1e-5 * abs(wholeLoss.sum), "\(splitLoss) vs \(wholeLoss.sum)")
    #expect(relativeError(splitGradients, wholeGradients) < 1e-5)

    let savedThreads = Kernels.threadCount
    defer { Kernels.threadCount = savedThreads }
    var results: [(LossSum, [Float])] = []
    for threads in [1, 2, 3] {
        Kernels.threadCount = threads
        results.append(try lossAndGradients(model, try batch(rows[...]), DropoutKey(seed: 9, step: 2, firstExample: 0)))
    }
    for result in results.dropFirst() { #expect(result.0 == results[0].0 && result.1 == results[0].1, "bit-identical across thread counts") }
}

@Test func configOverridesAreTypedAsTheConfigAndNamed() throws {
    let config = try GPT2Config.load(path: tinyModelDirectory.appendingPathComponent("config.json").path)
    let changed = try config.applyingOverrides("resid_pdrop=0.25, attn_pdrop=0,n_layer=3,scale_attn_weights=false,pad_token_id=null,summary_type=mean,hidden_size=64")
    #expect(changed.residPdrop == 0.25 && changed.attnPdrop == 0 && changed.embdPdrop == config.embdPdrop)
    #expect(changed.nLayer == 3 && !changed.scaleAttentionWeights && changed.padTokenID == nil && changed.nEmbd == 64)
    #expect(changed.extraFields["summary_type"] == .string("mean"))
    let written = try JSONSerialization.jsonObject(with: try changed.jsonData()) as? [String: Any]
    #expect(written?["resid_pdrop"] as? Double == 0.25, "the resolved config is what is saved")
    let cases: [(String, String)] = [
        ("no_such_field=1", "--config-overrides: no_such_field is not a field of the model config"),
        ("n_layer=2.5", "--config-overrides: n_layer takes a whole number, got '2.5'"),
        ("resid_pdrop=high", "--config-overrides: resid_pdrop takes a number, got 'high'"),
        ("resid_pdrop=1.5", "--config-overrides: resid_pdrop must be a probability between 0 and 1, got 1.5"),
        ("scale_attn_weights=maybe", "--config-overrides: scale_attn_weights takes true or false, got 'maybe'"),
        ("resid_pdrop", "--config-overrides: 'resid_pdrop' is not key=value (pairs are separated by commas)"),
        ("n_head=5", "--config-overrides: n_embd 32 is not divisible by n_head 5"),
        ("architectures=x", "--config-overrides: architectures is not a number, true/false or a string in the config, so it cannot be overridden"),
    ]
    for (overrides, message) in cases {
        #expect(throws: ModelError.invalidOverride(problem: String(message.dropFirst("--config-overrides: ".count)))) {
            try config.applyingOverrides(overrides)
        }
    }
    #expect(config.embdPdrop == 0 && GPT2Config().residPdrop == 0.1, "the fixture's 0 is read; Hugging Face's default is 0.1")
}

/// Gradient checkpointing computes each block again in backward, from its kept input, with the
/// same masks: the loss, logits and every gradient are the same bits as without it, with
/// dropout, padding and three layers (so a block's input is another block's kept output), and a
/// second batch of another shape through the same model replans its activations.
@Test func gradientCheckpointingGivesTheSameBits() throws {
    var config = GPT2Config(vocabSize: 13, nPositions: 8, nEmbd: 8, nLayer: 3, nHead: 2, embdPdrop: 0.2, attnPdrop: 0.2, residPdrop: 0.2)
    config.initializerRange = 0.4
    let plain = try GPT2Model.randomlyInitialized(config: config, seed: 11)
    let checkpointed = try GPT2Model.randomlyInitialized(config: config, seed: 11)
    checkpointed.gradientCheckpointing = true
    let short = try Batch(inputIDs: [[3, 1, 4], [1, 5, 9]])
    for (batch, key) in [(paddedBatch, DropoutKey(seed: 3, step: 2, firstExample: 4)), (short, DropoutKey(seed: 3, step: 3, firstExample: 0)),
                         (paddedBatch, nil)] {
        let (loss, gradients) = try lossAndGradients(plain, batch, key)
        let logits = Array(plain.logits)
        let (checkpointedLoss, checkpointedGradients) = try lossAndGradients(checkpointed, batch, key)
        #expect(loss == checkpointedLoss)
        #expect(logits.map(\.bitPattern) == Array(checkpointed.logits).map(\.bitPattern))
        #expect(gradients.map(\.bitPattern) == checkpointedGradients.map(\.bitPattern))
        #expect(gradients.contains { $0 != 0 })
    }
    // And it did keep less: one block's intermediates instead of three.
    func activationFloats(_ model: GPT2Model) -> Int {
        let planned = Mirror(reflecting: model).children.first { $0.label == "activations" }?.value as? Activations
        return Mirror(reflecting: planned as Any).children.first.map { Mirror(reflecting: $0.value).children
            .compactMap { $0.value as? FloatBuffer }.reduce(0) { $0 + $1.count } } ?? 0
    }
    #expect(activationFloats(checkpointed) > 0 && activationFloats(checkpointed) < activationFloats(plain),
            "\(activationFloats(checkpointed)) floats against \(activationFloats(plain))")
}
