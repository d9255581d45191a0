import Foundation
@testable import GPT2
@testable import Kernels
import TestSupport
import Testing

/// The sizes the model checks against physical memory before allocating, and the logits it
/// refuses to choose a token from.
@Suite struct ModelLimitTests {
    static let microConfig = GPT2Config(vocabSize: 50257, nPositions: 64, nEmbd: 16, nLayer: 2, nHead: 2)

    func allocatedFloats(_ subject: Any) -> Int {
        Mirror(reflecting: subject).children.compactMap { $0.value as? FloatBuffer }.reduce(0) { $0 + $1.count }
    }

    @Test func theCountsCheckedAreTheCountsAllocated() throws {
        for config in [Self.microConfig, GPT2Config(vocabSize: 301, nPositions: 32, nEmbd: 32, nLayer: 3, nHead: 4, nInner: 40)] {
            #expect(config.parameterCount == ParameterLayout(config: config).totalCount)
            for checkpointed in [false, true] {
                let activations = Activations(config: config, rowCapacity: 3 * 7, scoreCapacity: 3 * 7 * 7, checkpointed: checkpointed)
                #expect(Activations.floatCount(config: config, rowCapacity: 3 * 7, scoreCapacity: 3 * 7 * 7, checkpointed: checkpointed)
                        == allocatedFloats(activations), "checkpointed: \(checkpointed)")
            }
            let model = try GPT2Model.randomlyInitialized(config: config, seed: 1)
            let session = InferenceSession(model: model, batchSize: 3, capacity: 7, weights: DecodingWeights(model: model, dtype: .float32))
            #expect(InferenceSession.floatCount(config: config, batchSize: 3, capacity: 7) == allocatedFloats(session))
        }
        var huge = Self.microConfig
        huge.nEmbd = 1 << 40
        #expect(huge.parameterCount == nil, "n_embd² overflows")
    }

    /// Batches whose buffers exceed physical memory are refused before any is allocated.
    @Test func batchesTooLargeForMemoryAreRefused() throws {
        let model = try GPT2Model.randomlyInitialized(config: Self.microConfig, seed: 1)
        let V = Self.microConfig.vocabSize, T = 64
        // The logits and their probabilities alone (2V floats a token) fill physical memory.
        let sequences = PhysicalMemory.bytes / (T * 2 * V * MemoryLayout<Float>.stride) + 1
        let batch = Batch(batchSize: sequences, sequenceLength: T, inputIDs: [Int32](repeating: 1, count: sequences * T),
                          labels: [Int32](repeating: 1, count: sequences * T))
        let forward = #expect(throws: ModelError.self) { try model.forward(batch) }
        #expect(forward?.description.contains("for the activations of a batch of \(sequences) x \(T) tokens, with the parameters") == true)
        // Each sequence decodes into a row of V logits.
        let decoded = PhysicalMemory.bytes / (V * MemoryLayout<Float>.stride) + 1
        let generate = #expect(throws: ModelError.self) {
            try model.generate(prompt: [1], count: decoded, batchSize: decoded, settings: GenerationSettings())
        }
        #expect(generate?.description.contains("for decoding \(decoded) sequences of up to 21 tokens") == true)
    }

    @Test func noTokenIsChosenFromLogitsThatLeaveNone() throws {
        let logits: [Float] = [0.5, 2, 1]
        func choose(_ row: [Float], history: [Int] = [7], _ change: (inout GenerationSettings) -> Void) throws -> Int {
            var settings = GenerationSettings()
            change(&settings)
            var sampler = Sampler(settings: settings)
            return try row.withUnsafeBufferPointer { try sampler.next($0, history: history, newCount: 0) }
        }
        #expect(try choose(logits) { $0.greedy = true } == 1)
        for greedy in [true, false] {
            #expect(throws: ModelError.noTokenToChoose(position: 1, problem: "the model's logits are not finite (NaN or infinity): "
                + "its weights hold NaN or infinity, or its activations overflow")) {
                try choose([0.5, .nan, 1]) { $0.greedy = greedy }
            }
        }
        // Too small a temperature turns every logit into an infinity.
        #expect(throws: ModelError.self) { try choose(logits) { $0.temperature = 1e-44 } }
        // Banning every unigram already seen leaves nothing.
        #expect(throws: ModelError.noTokenToChoose(position: 3, problem: "the repetition rules and the minimum length exclude every token")) {
            try choose(logits, history: [0, 1, 2]) { $0.greedy = true; $0.noRepeatNgramSize = 1 }
        }
    }
}
