import Foundation
import Kernels

/// The sum of the per-token cross-entropies of a batch and how many tokens were counted, so that
/// callers can normalise over several micro-batches or ranks.
public struct LossSum: Sendable, Equatable {
    public var sum: Double
    public var count: Int
    public init(sum: Double = 0, count: Int = 0) { self.sum = sum; self.count = count }
    public var mean: Double { count > 0 ? sum / Double(count) : .nan }
}

/// GPT-2 (GPT2LMHeadModel with tied embeddings) over flat buffers: one for the parameters, one
/// for their gradients, and activations planned once for each (batch, sequence) shape.
public final class GPT2Model {
    public private(set) var config: GPT2Config
    public private(set) var layout: ParameterLayout
    public private(set) var parameters: FloatBuffer
    public private(set) var gradients: FloatBuffer
    private var activations: Activations?
    private var lastBatch: (batchSize: Int, sequenceLength: Int, inputs: [Int32], targets: [Int32], attentionMask: [Int32]?, dropout: DropoutKey?)?

    /// `--gradient-checkpointing`: forward keeps only each block's output (the next block's input)
    /// and one block's worth of the rest, and backward computes each block's forward again just
    /// before its backward: the same kernels on the same inputs, so the same bits, for about a
    /// third more work and a fraction of the activations' memory.
    public var gradientCheckpointing = false {
        didSet { if gradientCheckpointing != oldValue { activations = nil; lastBatch = nil } }
    }

    public init(config: GPT2Config, parameters: FloatBuffer) {
        let layout = ParameterLayout(config: config)
        precondition(parameters.count == layout.totalCount, "parameter buffer does not match the config")
        self.config = config
        self.layout = layout
        self.parameters = parameters
        self.gradients = FloatBuffer(count: layout.totalCount)
    }

    public var parameterCount: Int { layout.totalCount }

    public func zeroGradients() { gradients.zero() }

    /// The logits [B, T, V] of the last forward pass.
    public var logits: UnsafeBufferPointer<Float> {
        guard let activations, let batch = lastBatch else { return UnsafeBufferPointer(start: nil, count: 0) }
        return UnsafeBufferPointer(start: activations.logits.pointer, count: batch.batchSize * batch.sequenceLength * config.vocabSize)
    }

    /// Runs the model on `batch` and returns the summed cross-entropy of the predicted tokens
    /// (labels shifted by one, -100 ignored). With `dropout` (training), the config's dropout
    /// applies with that key's masks; without it (evaluation), none does.
    @discardableResult
    public func forward(_ batch: Batch, dropout: DropoutKey? = nil) throws -> LossSum {
        try batch.validate(for: config)
        let (B, T) = (batch.batchSize, batch.sequenceLength)
        let (C, L, V) = (config.nEmbd, config.nLayer, config.vocabSize)
        if !(activations?.fits(batchSize: B, sequenceLength: T) ?? false) {
            let rows = max(B * T, activations?.rowCapacity ?? 0)
            // B·T·T saturates, so that a count beyond an Int is refused as too large.
            let scores = max(checkedProduct(B * T, T) ?? .max, activations?.scoreCapacity ?? 0)
            let activationFloats = Activations.floatCount(config: config, rowCapacity: rows, scoreCapacity: scores,
                                                          checkpointed: gradientCheckpointing)
            try PhysicalMemory.require(floats: checkedSum(activationFloats, checkedProduct(2, parameterCount)),
                                       "the activations of a batch of \(B) x \(T) tokens, with the parameters and their gradients")
            activations = Activations(config: config, rowCapacity: rows, scoreCapacity: scores, checkpointed: gradientCheckpointing)
        }
        let a = activations!
        let p = parameters.pointer
        let targets = batch.targets
        lastBatch = (B, T, batch.inputIDs, targets, batch.attentionMask, dropout)
        let rows = B * T
        let epsilon = Float(config.layerNormEpsilon)

        batch.inputIDs.withUnsafeBufferPointer { tokens in
            Kernels.embeddingForward(out: a.embedded.pointer, tokens: tokens.baseAddress!, wte: p + layout.tokenEmbedding,
                                     wpe: p + layout.positionEmbedding, batch: B, time: T, channels: C)
        }
        applyDropout(a.embedded.pointer, .embedding, layer: 0, key: dropout, batch: B, sequenceLength: T)
        withOptionalPointer(batch.attentionMask) { mask in
            for l in 0..<L { blockForward(l, a.block(l, batchSize: B, sequenceLength: T), keyMask: mask, dropout: dropout, batch: B, sequenceLength: T) }
        }
        let last = a.residual3.pointer + (L - 1) * rows * C
        Kernels.layerNormForward(out: a.lnf.pointer, mean: a.lnfMean.pointer, rstd: a.lnfRstd.pointer, inp: last,
                                 weight: p + layout.finalNormWeight, bias: p + layout.finalNormBias, rows: rows, channels: C, epsilon: epsilon)
        // Tied head: logits = lnf · wteᵀ.
        Kernels.matmul(a.logits.pointer, a.lnf.pointer, p + layout.tokenEmbedding, m: rows, n: V, k: C, transposeB: true)
        let total = targets.withUnsafeBufferPointer { targetPointer in
            Kernels.crossEntropyForward(losses: a.losses.pointer, probabilities: a.probabilities.pointer, logits: a.logits.pointer,
                                        targets: targetPointer.baseAddress!, rows: rows, vocabulary: V)
        }
        return LossSum(sum: total, count: targets.reduce(0) { $0 + ($1 == Batch.ignoredLabel ? 0 : 1) })
    }

    /// Block l's forward from its input (x.input) to its output (x.residual3).
    private func blockForward(_ l: Int, _ x: BlockActivations, keyMask: UnsafePointer<Int32>?, dropout: DropoutKey?, batch B: Int, sequenceLength T: Int) {
        let (C, NH, I) = (config.nEmbd, config.nHead, config.innerSize)
        let rows = B * T, w = layout.blocks[l], p = parameters.pointer
        let epsilon = Float(config.layerNormEpsilon)
        let scale = config.attentionScale
        Kernels.layerNormForward(out: x.ln1, mean: x.ln1Mean, rstd: x.ln1Rstd, inp: x.input,
                                 weight: p + w.ln1Weight, bias: p + w.ln1Bias, rows: rows, channels: C, epsilon: epsilon)
        Kernels.linearForward(out: x.qkv, inp: x.ln1, weight: p + w.attentionWeight, bias: p + w.attentionBias,
                              rows: rows, inFeatures: C, outFeatures: 3 * C)
        Kernels.attentionForward(out: x.attentionOut, att: x.attention, qkv: x.qkv, keyMask: keyMask,
                                 batch: B, time: T, channels: C, heads: NH, scale: scale, dropout: attentionDropout(layer: l, key: dropout))
        Kernels.linearForward(out: x.residual2, inp: x.attentionOut, weight: p + w.attentionProjectionWeight,
                              bias: p + w.attentionProjectionBias, rows: rows, inFeatures: C, outFeatures: C)
        applyDropout(x.residual2, .attentionResidual, layer: l, key: dropout, batch: B, sequenceLength: T)
        Kernels.residualAdd(out: x.residual2, inp: x.input, count: rows * C)
        Kernels.layerNormForward(out: x.ln2, mean: x.ln2Mean, rstd: x.ln2Rstd, inp: x.residual2,
                                 weight: p + w.ln2Weight, bias: p + w.ln2Bias, rows: rows, channels: C, epsilon: epsilon)
        Kernels.linearForward(out: x.fcPre, inp: x.ln2, weight: p + w.fcWeight, bias: p + w.fcBias, rows: rows, inFeatures: C, outFeatures: I)
        Kernels.geluForward(out: x.fcGelu, inp: x.fcPre, count: rows * I)
        Kernels.linearForward(out: x.residual3, inp: x.fcGelu, weight: p + w.fcProjectionWeight, bias: p + w.fcProjectionBias,
                              rows: rows, inFeatures: I, outFeatures: C)
        applyDropout(x.residual3, .mlpResidual, layer: l, key: dropout, batch: B, sequenceLength: T)
        Kernels.residualAdd(out: x.residual3, inp: x.residual2, count: rows * C)
    }

    /// Adds ∂(lossScale · Σ cross-entropy)/∂parameters of the last forward pass into `gradients`.
    /// With lossScale = 1 / (number of counted tokens) this is the gradient of the mean loss.
    /// `gradientsReady` hears of each of `layout.gradientReadyRanges`, in order, as soon as no
    /// later part of the pass adds to it, so a data-parallel caller can start reducing it while
    /// the rest is computed.
    public func backward(lossScale: Float, gradientsReady: ((Range<Int>) -> Void)? = nil) {
        guard let a = activations, let batch = lastBatch else { preconditionFailure("backward() needs a forward() first") }
        let (B, T) = (batch.batchSize, batch.sequenceLength)
        let (C, L, NH, V, I) = (config.nEmbd, config.nLayer, config.nHead, config.vocabSize, config.innerSize)
        let rows = B * T
        let p = parameters.pointer, g = gradients.pointer
        let scale = config.attentionScale
        /// ∂L/∂(a projection's output) from ∂L/∂(the residual sum it is added into): through the
        /// dropout between them, into dMasked; the residual stream's own gradient is left whole.
        func droppedGradient(_ dSum: UnsafeMutablePointer<Float>, _ site: DropoutSite, layer: Int) -> UnsafeMutablePointer<Float> {
            guard dropoutMask(site, layer: layer, key: batch.dropout) != nil else { return dSum }
            a.dMasked.pointer.update(from: dSum, count: rows * C)
            applyDropout(a.dMasked.pointer, site, layer: layer, key: batch.dropout, batch: B, sequenceLength: T)
            return a.dMasked.pointer
        }

        batch.targets.withUnsafeBufferPointer { targets in
            Kernels.crossEntropyBackward(probabilities: a.probabilities.pointer, targets: targets.baseAddress!, rows: rows, vocabulary: V, scale: lossScale)
        }
        let dLogits = a.probabilities.pointer
        // Tied head: dlnf = dlogits · wte, dwte += dlogitsᵀ · lnf.
        Kernels.matmul(a.dNorm.pointer, dLogits, p + layout.tokenEmbedding, m: rows, n: C, k: V)
        Kernels.matmul(g + layout.tokenEmbedding, dLogits, a.lnf.pointer, m: V, n: C, k: rows, transposeA: true, accumulate: true)
        let dResidual = a.dResidual.pointer
        dResidual.update(repeating: 0, count: rows * C)
        Kernels.layerNormBackward(dinp: dResidual, dweight: g + layout.finalNormWeight, dbias: g + layout.finalNormBias, dout: a.dNorm.pointer,
                                  inp: a.residual3.pointer + (L - 1) * rows * C, weight: p + layout.finalNormWeight,
                                  mean: a.lnfMean.pointer, rstd: a.lnfRstd.pointer, rows: rows, channels: C)
        let readyRanges = layout.gradientReadyRanges
        gradientsReady?(readyRanges[0])

        // dResidual carries ∂L/∂(the residual stream) down through the blocks.
        for l in stride(from: L - 1, through: 0, by: -1) {
            let w = layout.blocks[l]
            let x = a.block(l, batchSize: B, sequenceLength: T)
            // The last block's intermediates are still those forward left in the shared buffers.
            if a.checkpointed && l < L - 1 {
                withOptionalPointer(batch.attentionMask) { mask in
                    blockForward(l, x, keyMask: mask, dropout: batch.dropout, batch: B, sequenceLength: T)
                }
            }

            Kernels.linearBackward(dinp: a.dFc.pointer, dweight: g + w.fcProjectionWeight, dbias: g + w.fcProjectionBias,
                                   dout: droppedGradient(dResidual, .mlpResidual, layer: l), inp: x.fcGelu, weight: p + w.fcProjectionWeight, rows: rows, inFeatures: I, outFeatures: C)
            Kernels.geluBackward(dinp: a.dFc.pointer, inp: x.fcPre, dout: a.dFc.pointer, count: rows * I)
            Kernels.linearBackward(dinp: a.dNorm.pointer, dweight: g + w.fcWeight, dbias: g + w.fcBias, dout: a.dFc.pointer,
                                   inp: x.ln2, weight: p + w.fcWeight, rows: rows, inFeatures: C, outFeatures: I)
            Kernels.layerNormBackward(dinp: dResidual, dweight: g + w.ln2Weight, dbias: g + w.ln2Bias, dout: a.dNorm.pointer, inp: x.residual2,
                                      weight: p + w.ln2Weight, mean: x.ln2Mean, rstd: x.ln2Rstd,
                                      rows: rows, channels: C)
            Kernels.linearBackward(dinp: a.dAttentionOut.pointer, dweight: g + w.attentionProjectionWeight, dbias: g + w.attentionProjectionBias,
                                   dout: droppedGradient(dResidual, .attentionResidual, layer: l), inp: x.attentionOut, weight: p + w.attentionProjectionWeight,
                                   rows: rows, inFeatures: C, outFeatures: C)
            a.dQKV.pointer.update(repeating: 0, count: rows * 3 * C)
            Kernels.attentionBackward(dqkv: a.dQKV.pointer, dout: a.dAttentionOut.pointer, att: x.attention,
                                      qkv: x.qkv, batch: B, time: T, channels: C, heads: NH, scale: scale,
                                      dropout: attentionDropout(layer: l, key: batch.dropout))
            Kernels.linearBackward(dinp: a.dNorm.pointer, dweight: g + w.attentionWeight, dbias: g + w.attentionBias, dout: a.dQKV.pointer,
                                   inp: x.ln1, weight: p + w.attentionWeight, rows: rows, inFeatures: C, outFeatures: 3 * C)
            Kernels.layerNormBackward(dinp: dResidual, dweight: g + w.ln1Weight, dbias: g + w.ln1Bias, dout: a.dNorm.pointer, inp: x.input,
                                      weight: p + w.ln1Weight, mean: x.ln1Mean, rstd: x.ln1Rstd,
                                      rows: rows, channels: C)
            gradientsReady?(readyRanges[L - l])
        }
        applyDropout(dResidual, .embedding, layer: 0, key: batch.dropout, batch: B, sequenceLength: T)
        batch.inputs.withUnsafeBufferPointer { tokens in
            Kernels.embeddingBackward(dwte: g + layout.tokenEmbedding, dwpe: g + layout.positionEmbedding, dout: dResidual,
                                      tokens: tokens.baseAddress!, batch: B, time: T, channels: C)
        }
        gradientsReady?(readyRanges[L + 1])
    }

    /// The mask of `site` in `layer` under `key`; nil when there is no key (evaluation) or the
    /// config's probability for the site is 0.
    private func dropoutMask(_ site: DropoutSite, layer: Int, key: DropoutKey?) -> DropoutMask? {
        guard let key else { return nil }
        let probability = switch site {
        case .embedding: config.embdPdrop
        case .attention: config.attnPdrop
        case .attentionResidual, .mlpResidual: config.residPdrop
        }
        return probability > 0 ? DropoutMask(probability: probability, seed: key.seed, step: key.step, site: site, layer: layer) : nil
    }

    /// Dropout of a [B, T, C] activation (or its gradient) at `site`; the element at (t, c) of an
    /// example is at position t·C + c.
    private func applyDropout(_ x: UnsafeMutablePointer<Float>, _ site: DropoutSite, layer: Int, key: DropoutKey?, batch B: Int, sequenceLength T: Int) {
        guard let key, let mask = dropoutMask(site, layer: layer, key: key) else { return }
        Kernels.dropout(x, mask: mask, examples: B, firstExample: key.firstExample, elementsPerExample: T * config.nEmbd)
    }

    private func attentionDropout(layer: Int, key: DropoutKey?) -> Kernels.AttentionDropout? {
        guard let key, let mask = dropoutMask(.attention, layer: layer, key: key) else { return nil }
        return Kernels.AttentionDropout(mask: mask, firstExample: key.firstExample, maximumLength: config.nPositions)
    }

    /// Applies `--config-overrides` to a loaded model: settings such as dropout may change, the
    /// shapes of its weights (from `directory`) may not.
    public func applyConfigOverrides(_ overrides: String, directory: String) throws {
        let overridden = try config.applyingOverrides(overrides)
        guard ParameterLayout(config: overridden).tensors == layout.tensors else {
            throw ModelError.invalidOverride(problem: "changes the shape of the weights in \(directory) (\(overridden.differences(from: config).joined(separator: ", ")))")
        }
        replaceParameters(config: overridden, parameters: parameters)
    }

    /// Replaces the parameters (and the config that describes them), dropping planned activations.
    public func replaceParameters(config: GPT2Config, parameters: FloatBuffer) {
        let layout = ParameterLayout(config: config)
        precondition(parameters.count == layout.totalCount, "parameter buffer does not match the config")
        self.config = config
        self.layout = layout
        self.parameters = parameters
        self.gradients = FloatBuffer(count: layout.totalCount)
        self.activations = nil
        self.lastBatch = nil
    }
}

private func withOptionalPointer<R>(_ values: [Int32]?, _ body: (UnsafePointer<Int32>?) -> R) -> R {
    guard let values else { return body(nil) }
    return values.withUnsafeBufferPointer { body($0.baseAddress) }
}

/// Every activation the backward pass needs, with its scratch space, planned for up to
/// `rowCapacity` tokens (B·T) and `scoreCapacity` attention scores per head and layer (B·T·T);
/// smaller batches reuse it, so padding to each batch's longest example allocates nothing.
final class Activations {
    let config: GPT2Config
    let rowCapacity: Int
    let scoreCapacity: Int
    /// Gradient checkpointing: one block's intermediates, shared by all; every block's output kept.
    let checkpointed: Bool
    let embedded, ln1, ln1Mean, ln1Rstd, qkv, attention, attentionOut, residual2: FloatBuffer
    let ln2, ln2Mean, ln2Rstd, fcPre, fcGelu, residual3, lnf, lnfMean, lnfRstd: FloatBuffer
    let logits, probabilities, losses: FloatBuffer
    let dResidual, dNorm, dQKV, dAttentionOut, dFc: FloatBuffer
    /// A projection's output gradient through its dropout (the residual stream keeps its own).
    let dMasked: FloatBuffer

    init(config: GPT2Config, rowCapacity rows: Int, scoreCapacity scores: Int, checkpointed: Bool) {
        let (C, NH, V, I) = (config.nEmbd, config.nHead, config.vocabSize, config.innerSize)
        let L = checkpointed ? 1 : config.nLayer
        self.config = config
        rowCapacity = rows
        scoreCapacity = scores
        self.checkpointed = checkpointed
        embedded = FloatBuffer(count: rows * C)
        ln1 = FloatBuffer(count: L * rows * C)
        ln1Mean = FloatBuffer(count: L * rows)
        ln1Rstd = FloatBuffer(count: L * rows)
        qkv = FloatBuffer(count: L * rows * 3 * C)
        attention = FloatBuffer(count: L * NH * scores)
        attentionOut = FloatBuffer(count: L * rows * C)
        residual2 = FloatBuffer(count: L * rows * C)
        ln2 = FloatBuffer(count: L * rows * C)
        ln2Mean = FloatBuffer(count: L * rows)
        ln2Rstd = FloatBuffer(count: L * rows)
        fcPre = FloatBuffer(count: L * rows * I)
        fcGelu = FloatBuffer(count: L * rows * I)
        residual3 = FloatBuffer(count: config.nLayer * rows * C)
        lnf = FloatBuffer(count: rows * C)
        lnfMean = FloatBuffer(count: rows)
        lnfRstd = FloatBuffer(count: rows)
        logits = FloatBuffer(count: rows * V)
        probabilities = FloatBuffer(count: rows * V)
        losses = FloatBuffer(count: rows)
        dResidual = FloatBuffer(count: rows * C)
        dNorm = FloatBuffer(count: rows * C)
        dQKV = FloatBuffer(count: rows * 3 * C)
        dAttentionOut = FloatBuffer(count: rows * C)
        dFc = FloatBuffer(count: rows * I)
        dMasked = FloatBuffer(count: rows * C)
    }

    /// The floats `init` allocates; nil when the count overflows an Int.
    static func floatCount(config: GPT2Config, rowCapacity rows: Int, scoreCapacity scores: Int, checkpointed: Bool) -> Int? {
        let (C, NH, V, I) = (config.nEmbd, config.nHead, config.vocabSize, config.innerSize)
        let (L, stored) = (config.nLayer, checkpointed ? 1 : config.nLayer)
        // Per stored layer and row: ln1, qkv (3C), attentionOut, residual2, ln2, their four
        // statistics and the MLP's two (I); per layer and row, residual3. Per row besides: embedded,
        // lnf, dResidual, dNorm, dQKV (3C), dAttentionOut, dMasked, lnf's statistics, the losses,
        // dFc (I), logits and probabilities (V).
        let perStoredLayerRow = checkedSum(checkedProduct(7, C), checkedProduct(2, I), 4)
        let perRow = checkedSum(checkedProduct(stored, perStoredLayerRow), checkedProduct(L, C), checkedProduct(9, C), I, checkedProduct(2, V), 3)
        return checkedSum(checkedProduct(rows, perRow), checkedProduct(stored, NH, scores))
    }

    func fits(batchSize B: Int, sequenceLength T: Int) -> Bool { B * T <= rowCapacity && B * T * T <= scoreCapacity }

    /// Block l's activations for a batch of B sequences of T tokens.
    func block(_ layer: Int, batchSize B: Int, sequenceLength T: Int) -> BlockActivations {
        let (C, NH, I) = (config.nEmbd, config.nHead, config.innerSize)
        let rows = B * T, l = checkpointed ? 0 : layer
        return BlockActivations(
            input: layer == 0 ? embedded.pointer : residual3.pointer + (layer - 1) * rows * C,
            ln1: ln1.pointer + l * rows * C, ln1Mean: ln1Mean.pointer + l * rows, ln1Rstd: ln1Rstd.pointer + l * rows,
            qkv: qkv.pointer + l * rows * 3 * C, attention: attention.pointer + l * NH * B * T * T,
            attentionOut: attentionOut.pointer + l * rows * C, residual2: residual2.pointer + l * rows * C,
            ln2: ln2.pointer + l * rows * C, ln2Mean: ln2Mean.pointer + l * rows, ln2Rstd: ln2Rstd.pointer + l * rows,
            fcPre: fcPre.pointer + l * rows * I, fcGelu: fcGelu.pointer + l * rows * I, residual3: residual3.pointer + layer * rows * C)
    }
}

extension GPT2Config {
    /// The floats a model's planned activations take for up to `rows` tokens in batches whose
    /// attention weights take up to `scores` per head (B·T·T); nil when the count overflows.
    public func activationFloatCount(rows: Int, scores: Int, checkpointed: Bool) -> Int? {
        Activations.floatCount(config: self, rowCapacity: rows, scoreCapacity: scores, checkpointed: checkpointed)
    }

    /// The floats generating `batchSize` sequences of up to `capacity` tokens takes besides the
    /// model: the session's caches and the fp32 decoding weights.
    public func decodingFloatCount(batchSize: Int, capacity: Int) -> Int? {
        checkedSum(InferenceSession.floatCount(config: self, batchSize: batchSize, capacity: capacity), matrixWeightCount)
    }
}

/// Where one transformer block's activations live: [B·T, C] rows, except qkv [B·T, 3C], the MLP's
/// [B·T, I], the LayerNorm statistics [B·T] and the attention weights [B, NH, T, T].
struct BlockActivations {
    let input, ln1, ln1Mean, ln1Rstd, qkv, attention, attentionOut, residual2: UnsafeMutablePointer<Float>
    let ln2, ln2Mean, ln2Rstd, fcPre, fcGelu, residual3: UnsafeMutablePointer<Float>
}
