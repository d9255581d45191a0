import Foundation
import GPT2
import Kernels
import TestSupport
import Testing
import Training

@Test func linearScheduleMatchesTransformers() {
    let schedule = LearningRateSchedule(kind: .linear, peak: 1e-3, warmupSteps: 4, totalSteps: 10)
    let expected = [0, 2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3 * 5 / 6, 1e-3 * 4 / 6, 1e-3 * 3 / 6, 1e-3 * 2 / 6, 1e-3 / 6]
    for (step, rate) in expected.enumerated() { #expect(abs(schedule.learningRate(at: step) - rate) < 1e-15, "step \(step)") }
    #expect(schedule.learningRate(at: 12) == 0)
}

@Test func cosineAndConstantSchedules() {
    let cosine = LearningRateSchedule(kind: .cosine, peak: 2, warmupSteps: 2, totalSteps: 6)
    #expect(cosine.learningRate(at: 0) == 0 && cosine.learningRate(at: 1) == 1)
    #expect(abs(cosine.learningRate(at: 4) - 1) < 1e-12 && abs(cosine.learningRate(at: 2) - 2) < 1e-12)
    #expect(LearningRateSchedule(kind: .constant, peak: 3, warmupSteps: 5, totalSteps: 9).learningRate(at: 0) == 3)
    #expect(LearningRateSchedule(kind: .constantWithWarmup, peak: 3, warmupSteps: 3, totalSteps: 9).learningRate(at: 1) == 1)
    #expect(LearningRateSchedule.warmupSteps("0.1", totalSteps: 95) == 10)
    #expect(LearningRateSchedule.warmupSteps("200", totalSteps: 95) == 200)
    #expect(LearningRateSchedule.warmupSteps("ten", totalSteps: 95) == nil)
}

@Test func adamWTakesTorchsStepAndSkipsDecayWhereTrainerDoes() throws {
    let config = GPT2Config(vocabSize: 5, nPositions: 4, nEmbd: 4, nLayer: 1, nHead: 2)
    let layout = ParameterLayout(config: config)
    let parameters = FloatBuffer((0..<layout.totalCount).map { Float($0 % 7) * 0.1 - 0.3 })
    let gradients = FloatBuffer((0..<layout.totalCount).map { Float($0 % 5) * 0.02 - 0.04 })
    let optimizer = AdamW(layout: layout, settings: .init(weightDecay: 0.1))
    let before = parameters.array
    for _ in 0..<2 { optimizer.update(parameters: parameters, gradients: gradients, learningRate: 0.01) }
    // Two steps of torch's formula, in Double, for one decayed and one undecayed element.
    func expected(_ p0: Double, _ g: Double, decay: Double) -> Double {
        var (p, m, v) = (p0, 0.0, 0.0)
        for t in 1...2 {
            p *= 1 - 0.01 * decay
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            p -= 0.01 / (1 - pow(0.9, Double(t))) * m / (v.squareRoot() / (1 - pow(0.999, Double(t))).squareRoot() + 1e-8)
        }
        return p
    }
    let weight = layout.tensor(named: "h.0.attn.c_attn.weight")!.offset + 3
    let bias = layout.tensor(named: "h.0.ln_1.bias")!.offset + 1
    #expect(abs(Double(parameters[weight]) - expected(Double(before[weight]), Double(gradients[weight]), decay: 0.1)) < 1e-6)
    #expect(abs(Double(parameters[bias]) - expected(Double(before[bias]), Double(gradients[bias]), decay: 0)) < 1e-6)
    #expect(AdamW.isDecayed("transformer.wte.weight") && AdamW.isDecayed("transformer.h.0.mlp.c_fc.weight"))
    #expect(!AdamW.isDecayed("transformer.h.0.ln_2.weight") && !AdamW.isDecayed("transformer.ln_f.weight") && !AdamW.isDecayed("transformer.h.0.attn.c_proj.bias"))
}

@Test func clippingScalesOnlyAboveTheLimitAndAdamWAppliesTheFactor() throws {
    #expect(clippingScale(norm: 5, maxNorm: 10) == 1)
    let scale = clippingScale(norm: 5, maxNorm: 1)
    #expect(scale == Float(1 / (5 + 1e-6)))
    #expect(clippingScale(norm: 5, maxNorm: 0) == 1, "0 turns clipping off")

    // AdamW with the factor takes exactly the step it takes from gradients scaled beforehand.
    let config = GPT2Config(vocabSize: 5, nPositions: 4, nEmbd: 4, nLayer: 1, nHead: 2)
    let layout = ParameterLayout(config: config)
    let random = (0..<layout.totalCount).map { Float($0 % 11) * 0.3 - 1.5 }
    let (scaledParameters, factorParameters) = (FloatBuffer(random), FloatBuffer(random))
    let raw = FloatBuffer(random.map { $0 * 0.7 + 0.2 })
    let scaled = FloatBuffer(raw.array.map { $0 * scale })
    let (first, second) = (AdamW(layout: layout, settings: .init(weightDecay: 0.01)), AdamW(layout: layout, settings: .init(weightDecay: 0.01)))
    for _ in 0..<3 {
        first.update(parameters: scaledParameters, gradients: scaled, learningRate: 0.01)
        second.update(parameters: factorParameters, gradients: raw, learningRate: 0.01, gradientScale: scale)
    }
    #expect(scaledParameters.array == factorParameters.array && first.secondMoment.array == second.secondMoment.array)
}

/// ZeRO-1's optimizer: each rank's AdamW over its shard alone, taken together, is the whole
/// buffer's AdamW bit for bit (decay on the right tensors across shard edges, moments offset).
@Test func shardedAdamWStepsEqualTheWholeBuffersStep() throws {
    let config = GPT2Config(vocabSize: 7, nPositions: 4, nEmbd: 8, nLayer: 2, nHead: 2)
    let layout = ParameterLayout(config: config)
    let start = (0..<layout.totalCount).map { Float($0 % 13) * 0.2 - 1.1 }
    let gradients = FloatBuffer((0..<layout.totalCount).map { Float($0 % 7) * 0.1 - 0.3 })
    let settings = AdamW.Settings(weightDecay: 0.1)
    let whole = FloatBuffer(start), wholeOptimizer = AdamW(layout: layout, settings: settings)
    let shards = ParameterShards(count: layout.totalCount, ranks: 3)
    let parts = shards.ranges.map { _ in FloatBuffer(start) }
    let optimizers = shards.ranges.map { AdamW(layout: layout, settings: settings, shard: $0) }
    #expect(wholeOptimizer.holdsEveryMoment && !optimizers[1].holdsEveryMoment)
    #expect(optimizers.map(\.firstMoment.count) == shards.ranges.map(\.count))
    for _ in 0..<3 {
        wholeOptimizer.update(parameters: whole, gradients: gradients, learningRate: 0.01, gradientScale: 0.5)
        for (part, optimizer) in zip(parts, optimizers) {
            optimizer.update(parameters: part, gradients: gradients, learningRate: 0.01, gradientScale: 0.5)
        }
    }
    for (range, (part, optimizer)) in zip(shards.ranges, zip(parts, optimizers)) {
        #expect(Array(part.array[range]) == Array(whole.array[range]))
        #expect(Array(part.array[..<range.lowerBound]) == Array(start[..<range.lowerBound]), "outside its shard nothing is written")
        #expect(optimizer.secondMoment.array == Array(wholeOptimizer.secondMoment.array[range]))
    }
}

@Test func aCheckpointIsAllOrNothingAndPruningKeepsTheBest() throws {
    let model = try GPT2Model.randomlyInitialized(config: GPT2Config(vocabSize: 11, nPositions: 8, nEmbd: 8, nLayer: 1, nHead: 2), seed: 1)
    let optimizer = AdamW(layout: model.layout, settings: .init())
    let output = try TestPaths.temporaryDirectory("checkpoints").path
    let arguments = TrainingArguments(outputDir: output, trainFile: "x.txt")
    struct Interrupted: Error {}
    #expect(throws: TrainingError.self) {
        try Checkpoint.write(to: Checkpoint.directory(in: output, step: 1), model: model, optimizer: optimizer, state: TrainerState(),
                             arguments: arguments, extraFiles: { _ in throw Interrupted() })
    }
    #expect(try FileManager.default.contentsOfDirectory(atPath: output).isEmpty, "nothing half-written is left")
    for step in [2, 4, 6, 8] {
        var state = TrainerState()
        (state.globalStep, state.totalSteps, state.globalBatchSize) = (step, 8, 4)  // as a run of 8 steps writes it
        try Checkpoint.write(to: Checkpoint.directory(in: output, step: step), model: model, optimizer: optimizer, state: state,
                             arguments: arguments, extraFiles: { _ in })
    }
    try FileManager.default.createDirectory(atPath: output + "/checkpoint-1", withIntermediateDirectories: true)
    #expect(Checkpoint.list(in: output).map(\.step) == [2, 4, 6, 8], "a directory without the marker is not a checkpoint")
    try Checkpoint.prune(in: output, keep: 2, best: Checkpoint.directory(in: output, step: 2))
    #expect(Checkpoint.list(in: output).map(\.step) == [2, 8])
    #expect(FileManager.default.fileExists(atPath: output + "/checkpoint-1"), "what this program did not write stays")
    let (state, saved) = try Checkpoint.readState(Checkpoint.directory(in: output, step: 8))
    #expect(state.globalStep == 8 && saved == arguments)
}

@Test func lossChartDrawsBothCurves() {
    let records: [MetricsRecord] = [["step": .number(1), "loss": .number(3)], ["step": .number(2), "loss": .number(2)],
                                    ["step": .number(2), "eval_loss": .number(2.5)]]
    let svg = LossChart.svg(records)
    #expect(svg.hasPrefix("<svg") && svg.contains("polyline") && svg.contains("train loss") && svg.contains("<circle"))
}
