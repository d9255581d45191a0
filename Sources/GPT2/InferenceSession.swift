import Kernels

/// Incremental decoding: the keys and values of every layer are kept for the tokens seen so far,
/// so each new token costs one row through the model. Memory is allocated once, for `batchSize`
/// sequences of up to `capacity` tokens. The matrices (and token embeddings) come from
/// `DecodingWeights`, in fp32 or bfloat16; LayerNorms, biases and position embeddings are read
/// from the model's fp32 parameters (position embeddings rounded alike with bf16).
public final class InferenceSession {
    public let model: GPT2Model
    public let batchSize: Int
    public let capacity: Int
    public let weights: DecodingWeights
    /// Tokens already in the cache, the same for every sequence.
    public private(set) var length = 0
    private let keysTransposed: FloatBuffer  // [L, B, C, keyStride]
    private let keyStride: Int
    private let values: FloatBuffer  // [L, B, capacity, C]
    private let hidden, normed, qkv, attentionOut, fc, fcGelu: FloatBuffer
    private let mean, rstd, lastHidden, lastLogits: FloatBuffer

    /// `weights` must have been made from `model` as it is now.
    public init(model: GPT2Model, batchSize: Int, capacity: Int, weights: DecodingWeights) {
        precondition(batchSize > 0 && capacity > 0 && capacity <= model.config.nPositions)
        let config = model.config
        let (C, L, I, V) = (config.nEmbd, config.nLayer, config.innerSize, config.vocabSize)
        let rows = batchSize * capacity
        self.model = model
        self.batchSize = batchSize
        self.capacity = capacity
        precondition(weights.blocks.count == L && weights.head.columnCount == V, "decoding weights of another model")
        self.weights = weights
        keyStride = Self.keyStride(capacity: capacity)
        keysTransposed = FloatBuffer(count: L * batchSize * C * keyStride)
        values = FloatBuffer(count: L * rows * C)
        hidden = FloatBuffer(count: rows * C)
        normed = FloatBuffer(count: rows * C)
        qkv = FloatBuffer(count: rows * 3 * C)
        attentionOut = FloatBuffer(count: rows * C)
        fc = FloatBuffer(count: rows * I)
        fcGelu = FloatBuffer(count: rows * I)
        mean = FloatBuffer(count: rows)
        rstd = FloatBuffer(count: rows)
        lastHidden = FloatBuffer(count: batchSize * C)
        lastLogits = FloatBuffer(count: batchSize * V)
    }

    /// Cached positions per channel: the capacity rounded up to whole key blocks.
    static func keyStride(capacity: Int) -> Int {
        (capacity + Kernels.cachedKeyBlock - 1) / Kernels.cachedKeyBlock * Kernels.cachedKeyBlock
    }

    /// The floats `init` allocates; nil when the count overflows an Int.
    static func floatCount(config: GPT2Config, batchSize: Int, capacity: Int) -> Int? {
        let (C, L, I, V) = (config.nEmbd, config.nLayer, config.innerSize, config.vocabSize)
        let rows = checkedProduct(batchSize, capacity)
        // Per layer the keys and values; per row hidden, normed, qkv (3C), attentionOut, fc and
        // fcGelu (I), mean and rstd; per sequence lastHidden and lastLogits.
        return checkedSum(checkedProduct(L, batchSize, C, keyStride(capacity: capacity)), checkedProduct(L, rows, C),
                          checkedProduct(rows, checkedSum(checkedProduct(6, C), checkedProduct(2, I), 2)),
                          checkedProduct(batchSize, checkedSum(C, V)))
    }

    public func reset() { length = 0 }

    /// Feeds `tokens[b]` (the same count for every sequence: the whole prompt first, then one
    /// token per step) and returns the logits [B, V] after each sequence's last new token.
    public func append(_ tokens: [[Int32]]) -> UnsafeBufferPointer<Float> {
        let config = model.config
        let (C, L, NH, V, I) = (config.nEmbd, config.nLayer, config.nHead, config.vocabSize, config.innerSize)
        let (B, n) = (batchSize, tokens[0].count)
        precondition(tokens.count == B && tokens.allSatisfy { $0.count == n } && n > 0, "one equal-length row per sequence")
        precondition(length + n <= capacity, "the cache holds \(capacity) tokens")
        let rows = B * n
        let p = model.parameters.pointer
        let layout = model.layout
        let epsilon = Float(config.layerNormEpsilon)
        let scale = config.attentionScale

        for b in 0..<B {
            for i in 0..<n {
                let row = hidden.pointer + (b * n + i) * C
                let token = Int(tokens[b][i]), position = p + layout.positionEmbedding + (length + i) * C
                for c in 0..<C { row[c] = weights.head.value(c, token) + weights.rounded(position[c]) }
            }
        }
        for l in 0..<L {
            let w = layout.blocks[l]
            Kernels.layerNormForward(out: normed.pointer, mean: mean.pointer, rstd: rstd.pointer, inp: hidden.pointer,
                                     weight: p + w.ln1Weight, bias: p + w.ln1Bias, rows: rows, channels: C, epsilon: epsilon)
            let matrices = weights.blocks[l]
            matrices.attention.multiply(m: rows, a: normed.pointer, c: qkv.pointer, ldc: 3 * C, start: .rowVector(p + w.attentionBias))
            let layerKeys = keysTransposed.pointer + l * B * C * keyStride, layerValues = values.pointer + l * B * capacity * C
            for b in 0..<B {
                for i in 0..<n {
                    let source = qkv.pointer + (b * n + i) * 3 * C, position = length + i
                    for c in 0..<C { layerKeys[(b * C + c) * keyStride + position] = source[C + c] }
                    (layerValues + (b * capacity + position) * C).update(from: source + 2 * C, count: C)
                }
            }
            Kernels.cachedAttentionForward(out: attentionOut.pointer, qkv: qkv.pointer, keysTransposed: layerKeys, keyStride: keyStride, values: layerValues,
                                           batch: B, newTokens: n, pastLength: length, capacity: capacity,
                                           channels: C, heads: NH, scale: scale)
            // The residual stream: hidden += proj(attention); hidden += mlp(ln2(hidden)).
            matrices.attentionProjection.multiply(m: rows, a: attentionOut.pointer, c: normed.pointer, ldc: C,
                                                  start: .rowVector(p + w.attentionProjectionBias))
            Kernels.residualAdd(out: hidden.pointer, inp: normed.pointer, count: rows * C)
            Kernels.layerNormForward(out: normed.pointer, mean: mean.pointer, rstd: rstd.pointer, inp: hidden.pointer,
                                     weight: p + w.ln2Weight, bias: p + w.ln2Bias, rows: rows, channels: C, epsilon: epsilon)
            matrices.fc.multiply(m: rows, a: normed.pointer, c: fc.pointer, ldc: I, start: .rowVector(p + w.fcBias))
            Kernels.geluForward(out: fcGelu.pointer, inp: fc.pointer, count: rows * I)
            matrices.fcProjection.multiply(m: rows, a: fcGelu.pointer, c: normed.pointer, ldc: C, start: .rowVector(p + w.fcProjectionBias))
            Kernels.residualAdd(out: hidden.pointer, inp: normed.pointer, count: rows * C)
        }
        // Only each sequence's last position needs logits.
        for b in 0..<B { (lastHidden.pointer + b * C).update(from: hidden.pointer + (b * n + n - 1) * C, count: C) }
        Kernels.layerNormForward(out: normed.pointer, mean: mean.pointer, rstd: rstd.pointer, inp: lastHidden.pointer,
                                 weight: p + layout.finalNormWeight, bias: p + layout.finalNormBias, rows: B, channels: C, epsilon: epsilon)
        weights.head.multiply(m: B, a: normed.pointer, c: lastLogits.pointer, ldc: V, start: .zero)
        length += n
        return UnsafeBufferPointer(start: lastLogits.pointer, count: B * V)
    }
}
