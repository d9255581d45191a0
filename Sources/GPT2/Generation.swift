import Foundation
import Kernels

/// What `generate()` is told: lengths, the logits processors in Hugging Face's order
/// (repetition penalty, no-repeat n-grams, minimum length) and, when sampling, the warpers
/// (temperature, top-k, top-p).
public struct GenerationSettings: Sendable, Equatable {
    public var maxNewTokens = 20
    /// The end-of-sequence tokens are suppressed until this many new tokens exist.
    public var minNewTokens = 0
    public var greedy = false
    public var temperature = 1.0
    /// 0 turns top-k off.
    public var topK = 50
    public var topP = 1.0
    public var repetitionPenalty = 1.0
    /// 0 turns the n-gram ban off.
    public var noRepeatNgramSize = 0
    public var eosTokenIDs: Set<Int> = []
    public var stopAtEOS = true
    public var seed: UInt64 = 42

    public init() {}
}

/// Turns a row of logits into the next token, as `generate()` does.
public struct Sampler {
    public let settings: GenerationSettings
    private var generator: SeededGenerator

    /// Sequence `stream` of a run draws its own random numbers, so its text does not depend on
    /// how many sequences are generated at once.
    public init(settings: GenerationSettings, stream: Int = 0) {
        self.settings = settings
        generator = SeededGenerator(seed: settings.seed ^ (UInt64(stream) &* 0x9E37_79B9_7F4A_7C15))
    }

    /// Applies the processors and warpers to `logits` for a sequence whose tokens so far are
    /// `history` (prompt included), `newCount` of them generated.
    public func process(_ logits: inout [Float], history: [Int], newCount: Int) {
        if settings.repetitionPenalty != 1 {
            let penalty = Float(settings.repetitionPenalty)
            for token in Set(history) { logits[token] = logits[token] < 0 ? logits[token] * penalty : logits[token] / penalty }
        }
        let n = settings.noRepeatNgramSize
        if n > 0 && history.count + 1 >= n {
            let prefix = history.suffix(n - 1)
            for start in 0...(history.count - n) where history[start..<(start + n - 1)].elementsEqual(prefix) {
                logits[history[start + n - 1]] = -.infinity
            }
        }
        if newCount < settings.minNewTokens {
            for token in settings.eosTokenIDs where token < logits.count { logits[token] = -.infinity }
        }
        guard !settings.greedy else { return }
        if settings.temperature != 1 {
            let temperature = Float(settings.temperature)
            for i in logits.indices { logits[i] /= temperature }
        }
        if settings.topK > 0 && settings.topK < logits.count {
            let threshold = Self.kthLargest(logits, settings.topK)
            for i in logits.indices where logits[i] < threshold { logits[i] = -.infinity }
        }
        if settings.topP < 1 {
            // Drop the least likely tokens whose total probability is at most 1 - top_p, always keeping the most likely.
            // Tokens already at -∞ (top-k's leftovers) have no probability to drop.
            let order = logits.indices.filter { logits[$0] > -.infinity }.sorted { logits[$0] < logits[$1] }
            let probabilities = softmax(logits)
            var cumulative = 0.0
            for (rank, index) in order.enumerated() where rank < order.count - 1 {
                cumulative += probabilities[index]
                if cumulative <= 1 - settings.topP { logits[index] = -.infinity } else { break }
            }
        }
    }

    /// The next token: the first largest processed logit (greedy), or a draw from their softmax.
    /// Throws when the logits leave no token to choose: NaN compares false with everything, so
    /// greedy search would take token 0 and sampling would draw nothing.
    public mutating func next(_ row: UnsafeBufferPointer<Float>, history: [Int], newCount: Int) throws -> Int {
        func refuse(_ problem: String) -> ModelError { .noTokenToChoose(position: history.count, problem: problem) }
        guard row.allSatisfy(\.isFinite) else {
            throw refuse("the model's logits are not finite (NaN or infinity): its weights hold NaN or infinity, or its activations overflow")
        }
        var logits = Array(row)
        process(&logits, history: history, newCount: newCount)
        guard logits.allSatisfy({ !$0.isNaN && $0 < .infinity }) else {
            throw refuse("the logits are not finite after repetition penalty \(settings.repetitionPenalty) and temperature \(settings.temperature) "
                + "(too small a value overflows them)")
        }
        guard logits.contains(where: { $0 > -.infinity }) else {
            throw refuse("the repetition rules and the minimum length exclude every token")
        }
        if settings.greedy {
            var best = 0
            for i in logits.indices where logits[i] > logits[best] { best = i }
            return best
        }
        let probabilities = softmax(logits)
        let draw = generator.nextUnit()
        var cumulative = 0.0
        for (index, probability) in probabilities.enumerated() where probability > 0 {
            cumulative += probability
            if draw < cumulative { return index }
        }
        return probabilities.lastIndex { $0 > 0 } ?? 0
    }

    /// The k-th largest of `values` (1 ≤ k ≤ count), keeping only the k largest seen, in order:
    /// a vocabulary-sized sort per token is what made sampling slower than the model.
    static func kthLargest(_ values: [Float], _ k: Int) -> Float {
        var largest: [Float] = []  // ascending
        largest.reserveCapacity(k + 1)
        for value in values where largest.count < k || value > largest[0] {
            var low = 0, high = largest.count
            while low < high {
                let middle = (low + high) / 2
                if largest[middle] < value { low = middle + 1 } else { high = middle }
            }
            largest.insert(value, at: low)
            if largest.count > k { largest.removeFirst() }
        }
        return largest[0]
    }

    private func softmax(_ logits: [Float]) -> [Double] {
        let maximum = Double(logits.max() ?? 0)
        let exponentials = logits.map { $0 == -.infinity ? 0 : exp(Double($0) - maximum) }
        let total = exponentials.reduce(0, +)
        return exponentials.map { $0 / total }
    }
}

extension GPT2Model {
    /// `count` continuations of `prompt`, generated `batchSize` at a time with a key/value cache.
    /// Each holds the new ids only, ending with the end-of-sequence token that stopped it (if one did).
    /// A sequence also ends where it fills the model's positions (n_positions tokens in all).
    /// `weightsDType` bf16 decodes with the weights rounded to bfloat16.
    public func generate(prompt: [Int], count: Int, batchSize: Int, settings: GenerationSettings,
                         weightsDType: WeightsDType = .float32) throws -> [[Int]] {
        // A prompt it cannot run, or a batch too large for memory, is refused before the weights
        // are copied (a second or so for 124M).
        try checkPrompt(prompt)
        try requireDecodingMemory(batchSize: min(batchSize, count), capacity: sequenceCapacity(prompt: prompt, settings: settings), dtype: weightsDType)
        return try generate(prompt: prompt, count: count, batchSize: batchSize, settings: settings,
                            weights: DecodingWeights(model: self, dtype: weightsDType))
    }

    private func checkPrompt(_ prompt: [Int]) throws {
        guard !prompt.isEmpty else { throw ModelError.invalidBatch(problem: "the prompt is empty") }
        guard prompt.count < config.nPositions else {
            throw ModelError.invalidBatch(problem: "the prompt has \(prompt.count) tokens; the model's context (n_positions) is \(config.nPositions)")
        }
        if let bad = prompt.first(where: { $0 < 0 || $0 >= config.vocabSize }) {
            throw ModelError.invalidBatch(problem: "prompt token \(bad) is outside the vocabulary (size \(config.vocabSize))")
        }
    }

    /// Tokens a sequence holds at most: the prompt and the new tokens, within the model's positions.
    private func sequenceCapacity(prompt: [Int], settings: GenerationSettings) -> Int {
        prompt.count + min(settings.maxNewTokens, config.nPositions - prompt.count)
    }

    /// Throws unless an InferenceSession of `batchSize` sequences of `capacity` tokens fits in
    /// memory beside the model and its decoding weights in `dtype`.
    private func requireDecodingMemory(batchSize: Int, capacity: Int, dtype: WeightsDType) throws {
        let weights = config.matrixWeightCount * dtype.bytesPerWeight / MemoryLayout<Float>.stride
        try PhysicalMemory.require(floats: checkedSum(InferenceSession.floatCount(config: config, batchSize: batchSize, capacity: capacity),
                                                      checkedProduct(2, parameterCount), weights),
                                   "decoding \(batchSize) sequences of up to \(capacity) tokens, with the model and its decoding weights")
    }

    /// The same with the decoding weights already made from this model.
    public func generate(prompt: [Int], count: Int, batchSize: Int, settings: GenerationSettings,
                         weights: DecodingWeights) throws -> [[Int]] {
        try checkPrompt(prompt)
        let capacity = sequenceCapacity(prompt: prompt, settings: settings)
        let maxNewTokens = capacity - prompt.count
        let V = config.vocabSize
        var results: [[Int]] = []
        var session: InferenceSession?
        while results.count < count {
            let B = min(batchSize, count - results.count)
            if session?.batchSize != B {
                try requireDecodingMemory(batchSize: B, capacity: capacity, dtype: weights.dtype)
                session = InferenceSession(model: self, batchSize: B, capacity: capacity, weights: weights)
            }
            let cache = session!
            cache.reset()
            var samplers = (0..<B).map { Sampler(settings: settings, stream: results.count + $0) }
            var generated = [[Int]](repeating: [], count: B)
            var finished = [Bool](repeating: false, count: B)
            var logits = cache.append(Array(repeating: prompt.map { Int32($0) }, count: B))
            for step in 0..<maxNewTokens {
                for b in 0..<B where !finished[b] {
                    let row = UnsafeBufferPointer(rebasing: logits[(b * V)..<((b + 1) * V)])
                    let token = try samplers[b].next(row, history: prompt + generated[b], newCount: generated[b].count)
                    generated[b].append(token)
                    if settings.stopAtEOS && settings.eosTokenIDs.contains(token) { finished[b] = true }
                }
                if finished.allSatisfy({ $0 }) || step == maxNewTokens - 1 { break }
                // Finished sequences keep feeding their last token, whose logits are ignored, so
                // that the batch stays aligned.
                logits = cache.append((0..<B).map { [Int32(generated[$0].last!)] })
            }
            results += generated
        }
        return results
    }
}
