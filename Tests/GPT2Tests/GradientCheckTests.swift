import GPT2
import Testing

/// The backward pass against central finite differences of the forward pass, independent of PyTorch.
@Test func backwardMatchesFiniteDifferences() throws {
    var config = GPT2Config(vocabSize: 13, nPositions: 8, nEmbd: 8, nLayer: 2, nHead: 2)
    config.initializerRange = 0.4  // large enough that every path carries a visible gradient
    let model = try GPT2Model.randomlyInitialized(config: config, seed: 7)
    var generator = SeededGenerator(seed: 99)
    // Biases and LayerNorm parameters start at 0 and 1; perturb them so their paths are exercised too.
    for i in 0..<model.parameterCount { model.parameters[i] += Float(generator.nextNormal() * 0.1) }
    let batch = try Batch(inputIDs: [[1, 5, 9, 12, 0, 3], [7, 7, 2, 11, 4, 4]],
                          attentionMask: [[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])

    func meanLoss() throws -> Double { try model.forward(batch).mean }
    let loss = try model.forward(batch)
    model.zeroGradients()
    model.backward(lossScale: 1 / Float(loss.count))
    let analytic = model.gradients.array

    // Every tensor, at a few positions each, including the first and last element.
    let step: Float = 1e-2
    var checked = 0
    for tensor in model.layout.tensors {
        let positions = Set([0, tensor.count - 1, tensor.count / 2, tensor.count / 3])
        for position in positions {
            let index = tensor.offset + position
            let original = model.parameters[index]
            model.parameters[index] = original + step
            let plus = try meanLoss()
            model.parameters[index] = original - step
            let minus = try meanLoss()
            model.parameters[index] = original
            let numeric = (plus - minus) / Double(2 * step)
            let difference = abs(numeric - Double(analytic[index]))
            #expect(difference <= 2e-3 + 1e-2 * abs(numeric), "\(tensor.name)[\(position)]: numeric \(numeric) vs analytic \(analytic[index])")
            checked += 1
        }
    }
    #expect(checked > 60)
    // The check is not vacuous: gradients are far from zero.
    #expect(analytic.map { abs($0) }.max()! > 0.05)
}
