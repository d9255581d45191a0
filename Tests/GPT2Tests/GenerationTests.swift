import Foundation
@testable import GPT2
import Kernels
import TestSupport
import Testing

struct GreedyCase: Decodable {
    let prompt: [Int]
    let settings: [String: Double]
    let new_ids: [Int]

    var generationSettings: GenerationSettings {
        var result = GenerationSettings()
        result.greedy = true
        result.maxNewTokens = Int(settings["max_new_tokens"]!)
        result.minNewTokens = Int(settings["min_new_tokens"] ?? 0)
        result.repetitionPenalty = settings["repetition_penalty"] ?? 1
        result.noRepeatNgramSize = Int(settings["no_repeat_ngram_size"] ?? 0)
        result.eosTokenIDs = [300]
        return result
    }
}

let greedyCases = try! JSONDecoder().decode([GreedyCase].self, from: Data(contentsOf: TestPaths.modelFixtures.appendingPathComponent("greedy.json")))

@Test(arguments: greedyCases.indices)
func greedyDecodingMatchesTransformersGenerate(index: Int) throws {
    let (model, _) = try GPT2Model.load(directory: tinyModelDirectory.path)
    let testCase = greedyCases[index]
    let cached = try model.generate(prompt: testCase.prompt, count: 2, batchSize: 2, settings: testCase.generationSettings)
    #expect(cached[0] == testCase.new_ids && cached[1] == testCase.new_ids)

    // Without the cache: the whole sequence through the training forward pass at every step.
    var sampler = Sampler(settings: testCase.generationSettings)
    var sequence = testCase.prompt
    var uncached: [Int] = []
    for _ in 0..<testCase.generationSettings.maxNewTokens {
        try model.forward(try Batch(inputIDs: [sequence]))
        let V = model.config.vocabSize
        let last = UnsafeBufferPointer(rebasing: model.logits[((sequence.count - 1) * V)..<(sequence.count * V)])
        let token = try sampler.next(last, history: sequence, newCount: uncached.count)
        uncached.append(token)
        sequence.append(token)
        if token == 300 { break }
    }
    #expect(uncached == cached[0])
}

@Test func samplingIsSeededAndTopKOneIsGreedy() throws {
    let (model, _) = try GPT2Model.load(directory: tinyModelDirectory.path)
    var settings = GenerationSettings()
    settings.maxNewTokens = 12
    settings.seed = 9
    let first = try model.generate(prompt: [5, 6], count: 3, batchSize: 2, settings: settings)
    #expect(try model.generate(prompt: [5, 6], count: 3, batchSize: 3, settings: settings) == first, "the same seed, the same texts")
    settings.seed = 10
    #expect(try model.generate(prompt: [5, 6], count: 3, batchSize: 2, settings: settings) != first)
    settings.topK = 1
    var greedy = settings
    greedy.greedy = true
    #expect(try model.generate(prompt: [5, 6], count: 1, batchSize: 1, settings: settings) == model.generate(prompt: [5, 6], count: 1, batchSize: 1, settings: greedy))
}

@Test func processorsAndWarpersBehaveAsSpecified() {
    var settings = GenerationSettings()
    settings.topK = 0
    func processed(_ logits: [Float], history: [Int] = [], newCount: Int = 5, _ change: (inout GenerationSettings) -> Void) -> [Float] {
        var copy = settings
        change(&copy)
        var values = logits
        Sampler(settings: copy).process(&values, history: history, newCount: newCount)
        return values
    }
    // Temperature divides; top-k keeps the k largest (ties included).
    #expect(processed([2, 4, -6]) { $0.temperature = 2 } == [1, 2, -3])
    #expect(processed([1, 3, 3, 2]) { $0.topK = 2 } == [-.infinity, 3, 3, -.infinity])
    // Top-p: probabilities ~[0.665, 0.245, 0.090] for logits [2, 1, 0]; 0.7 keeps the first two.
    #expect(processed([2, 1, 0]) { $0.topP = 0.7 } == [2, 1, -.infinity])
    #expect(processed([2, 1, 0]) { $0.topP = 0.5 } == [2, -.infinity, -.infinity], "the most likely token always stays")
    // Repetition penalty divides positive and multiplies negative logits of seen tokens.
    #expect(processed([2, -2, 1], history: [0, 1, 1]) { $0.repetitionPenalty = 2 } == [1, -4, 1])
    // No repeated bigram: after "3 4 ... 3", 4 is banned.
    #expect(processed([0, 0, 0, 0, 0], history: [3, 4, 1, 3]) { $0.noRepeatNgramSize = 2 } == [0, 0, 0, 0, -.infinity])
    // The end-of-sequence token waits for the minimum length.
    #expect(processed([0, 5], newCount: 1) { $0.minNewTokens = 2; $0.eosTokenIDs = [1] } == [0, -.infinity])
    #expect(processed([0, 5], newCount: 2) { $0.minNewTokens = 2; $0.eosTokenIDs = [1] } == [0, 5])
}

@Test func generationRefusesPromptsItCannotRun() throws {
    let (model, _) = try GPT2Model.load(directory: tinyModelDirectory.path)
    let settings = GenerationSettings()
    #expect(throws: ModelError.self) { try model.generate(prompt: [], count: 1, batchSize: 1, settings: settings) }
    #expect(throws: ModelError.self) { try model.generate(prompt: Array(repeating: 1, count: 32), count: 1, batchSize: 1, settings: settings) }
    #expect(throws: ModelError.self) { try model.generate(prompt: [301], count: 1, batchSize: 1, settings: settings) }
    // A prompt near the context length stops where the positions run out, without a trap.
    var long = settings
    long.maxNewTokens = 50
    long.stopAtEOS = false
    #expect(try model.generate(prompt: Array(repeating: 1, count: 28), count: 1, batchSize: 1, settings: long)[0].count == 4)
}

/// The bf16 parity report: greedy ids with bfloat16 weights equal fp32's (transformers')
/// up to the first step whose fp32 top-2 margin is within the logits' bf16 perturbation.
@Test(arguments: greedyCases.indices)
func bfloat16GreedyIdsMatchWhereTheMarginAllows(index: Int) throws {
    let (model, _) = try GPT2Model.load(directory: tinyModelDirectory.path)
    let testCase = greedyCases[index]
    let settings = testCase.generationSettings
    let half = try model.generate(prompt: testCase.prompt, count: 1, batchSize: 1, settings: settings, weightsDType: .bfloat16)[0]

    // Both precisions teacher-forced along the reference ids, logits processed as generate() does.
    let capacity = testCase.prompt.count + testCase.new_ids.count
    let sessions = WeightsDType.allCases.map {
        InferenceSession(model: model, batchSize: 1, capacity: capacity, weights: DecodingWeights(model: model, dtype: $0))
    }
    let sampler = Sampler(settings: settings)
    var perturbation: Float = 0, margins: [Float] = []
    var input = testCase.prompt
    for (step, token) in testCase.new_ids.enumerated() {
        let history = testCase.prompt + testCase.new_ids.prefix(step)
        let logits = sessions.map { session -> [Float] in
            var row = Array(session.append([input.map { Int32($0) }]))
            sampler.process(&row, history: history, newCount: step)
            return row
        }
        for (full, rounded) in zip(logits[0], logits[1]) where full.isFinite { perturbation = max(perturbation, abs(full - rounded)) }
        let top = logits[0].sorted(by: >)
        margins.append(top[0] - top[1])
        input = [token]
    }
    #expect(perturbation < 0.05, "bf16 weights move the logits by at most \(perturbation)")
    let agreed = zip(half, testCase.new_ids).prefix { $0 == $1 }.count
    if agreed < testCase.new_ids.count {
        #expect(margins[agreed] <= 2 * perturbation,
                "bf16 left the reference at step \(agreed) where fp32's top-2 margin \(margins[agreed]) exceeds twice the perturbation \(perturbation)")
    } else {
        #expect(half == testCase.new_ids)
    }
    print("bf16 greedy case \(index): \(agreed) of \(testCase.new_ids.count) ids equal; logit perturbation \(perturbation); smallest fp32 margin \(margins.min()!)")
}

@Test func topKThresholdIsTheKthLargestLogit() {
    var generator = SeededGenerator(seed: 11)
    for k in [1, 2, 50, 300] {
        // Few distinct values, so that ties cross the threshold.
        let logits = (0..<300).map { _ in Float(Int.random(in: -20...20, using: &generator)) / 4 }
        #expect(Sampler.kthLargest(logits, k) == logits.sorted(by: >)[k - 1], "k = \(k)")
    }
}
