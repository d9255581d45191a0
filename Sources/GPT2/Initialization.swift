import Foundation
import Kernels

/// xoshiro256** seeded through splitmix64: the same numbers for the same seed on every machine.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var x = seed
        func splitmix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    public mutating func next() -> UInt64 {
        let result = ((state.1 &* 5) << 7 | (state.1 &* 5) >> 57) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = state.3 << 45 | state.3 >> 19
        return result
    }

    /// A uniform double in [0, 1) with 53 random bits.
    public mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// A standard normal sample (Box–Muller).
    public mutating func nextNormal() -> Double {
        let u1 = 1 - nextUnit()  // (0, 1], so the log is finite
        let u2 = nextUnit()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}

extension GPT2Model {
    /// A model initialised as GPT-2 is for training from scratch (Hugging Face's `_init_weights`):
    /// weights and embeddings N(0, initializer_range), the residual projections (attn.c_proj and
    /// mlp.c_proj) scaled by 1/√(2·n_layer), biases 0, LayerNorm weight 1 and bias 0.
    public static func randomlyInitialized(config: GPT2Config, seed: UInt64) throws -> GPT2Model {
        try config.validate(source: "config")
        let layout = ParameterLayout(config: config)
        let parameters = FloatBuffer(count: layout.totalCount)
        var generator = SeededGenerator(seed: seed)
        let std = config.initializerRange
        let residualStd = std / (2 * Double(config.nLayer)).squareRoot()
        for tensor in layout.tensors {
            let name = tensor.name
            let values = parameters.pointer + tensor.offset
            if name.hasSuffix(".bias") {
                continue
            } else if name.contains(".ln_") {
                values.update(repeating: 1, count: tensor.count)
            } else {
                let deviation = name.hasSuffix("c_proj.weight") ? residualStd : std
                for i in 0..<tensor.count { values[i] = Float(generator.nextNormal() * deviation) }
            }
        }
        return GPT2Model(config: config, parameters: parameters)
    }

    /// Grows or shrinks the vocabulary to `newSize` rows as `resize_token_embeddings` does: old
    /// rows are kept and new rows are set to the mean of the old ones. Hugging Face draws them from
    /// N(mean, 1e-9·covariance), which equals the mean to about 1e-5; this uses the mean exactly,
    /// so the result is deterministic. Gradients are reset.
    public func resizeTokenEmbeddings(to newSize: Int) {
        precondition(newSize > 0)
        var newConfig = config
        newConfig.vocabSize = newSize
        let newLayout = ParameterLayout(config: newConfig)
        let newParameters = FloatBuffer(count: newLayout.totalCount)
        let C = config.nEmbd
        let oldSize = config.vocabSize
        let kept = min(oldSize, newSize)
        let oldEmbedding = parameters.pointer + layout.tokenEmbedding
        let newEmbedding = newParameters.pointer + newLayout.tokenEmbedding
        newEmbedding.update(from: oldEmbedding, count: kept * C)
        if newSize > oldSize {
            var mean = [Double](repeating: 0, count: C)
            for row in 0..<oldSize {
                for c in 0..<C { mean[c] += Double(oldEmbedding[row * C + c]) }
            }
            for row in oldSize..<newSize {
                for c in 0..<C { newEmbedding[row * C + c] = Float(mean[c] / Double(oldSize)) }
            }
        }
        // Everything after the embedding keeps its order, so it moves as one block.
        let rest = layout.totalCount - layout.positionEmbedding
        (newParameters.pointer + newLayout.positionEmbedding).update(from: parameters.pointer + layout.positionEmbedding, count: rest)
        replaceParameters(config: newConfig, parameters: newParameters)
    }
}
