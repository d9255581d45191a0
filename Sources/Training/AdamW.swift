import Foundation
import GPT2
import Kernels

/// AdamW exactly as `torch.optim.AdamW` computes it (single-tensor path), over the flat parameter
/// buffer in one pass. Weight decay applies to the tensors `Trainer` decays: embeddings and
/// Conv1D weights, not biases and not LayerNorm parameters.
public final class AdamW {
    public struct Settings: Codable, Sendable, Equatable {
        public var beta1 = 0.9
        public var beta2 = 0.999
        public var epsilon = 1e-8
        public var weightDecay = 0.0
        public init(beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8, weightDecay: Double = 0.0) {
            self.beta1 = beta1
            self.beta2 = beta2
            self.epsilon = epsilon
            self.weightDecay = weightDecay
        }

        /// Refuses what `torch.optim.AdamW` refuses (lr >= 0, eps >= 0, 0 <= betas < 1,
        /// weight_decay >= 0), naming the flag that set the value and the range it must be in.
        public func validate(learningRate: Double) throws {
            let checks: [(flag: String, value: Double, range: String, valid: Bool)] = [
                ("--learning-rate", learningRate, "lr >= 0", learningRate >= 0),
                ("--adam-epsilon", epsilon, "eps >= 0", epsilon >= 0),
                ("--adam-beta1", beta1, "0 <= beta1 < 1", (0..<1).contains(beta1)),
                ("--adam-beta2", beta2, "0 <= beta2 < 1", (0..<1).contains(beta2)),
                ("--weight-decay", weightDecay, "weight_decay >= 0", weightDecay >= 0),
            ]
            if let invalid = checks.first(where: { !$0.valid }) {
                throw TrainingError.invalidSetting("invalid \(invalid.flag) \(invalid.value): AdamW needs \(invalid.range)")
            }
        }
    }

    public let settings: Settings
    /// The part of the parameter buffer this optimizer updates: all of it, or under ZeRO-1 this
    /// rank's shard.
    public let shard: Range<Int>
    private let parameterCount: Int
    /// exp_avg and exp_avg_sq of the shard: element i is parameter `shard.lowerBound + i`'s.
    public let firstMoment: FloatBuffer
    public let secondMoment: FloatBuffer
    /// Updates taken so far (torch's `step` state).
    public var stepCount = 0
    private let decayedRanges: [Range<Int>]
    private let undecayedRanges: [Range<Int>]

    public init(layout: ParameterLayout, settings: Settings, shard: Range<Int>? = nil) {
        let shard = shard ?? 0..<layout.totalCount
        self.settings = settings
        self.shard = shard
        parameterCount = layout.totalCount
        firstMoment = FloatBuffer(count: shard.count)
        secondMoment = FloatBuffer(count: shard.count)
        let within = { (tensors: [ParameterTensor]) in tensors.map { $0.range.clamped(to: shard) }.filter { !$0.isEmpty } }
        decayedRanges = within(layout.tensors.filter { Self.isDecayed($0.name) })
        undecayedRanges = within(layout.tensors.filter { !Self.isDecayed($0.name) })
    }

    /// exp_avg and exp_avg_sq, in the optimizer file's order (`Checkpoint.momentPrefixes`).
    public var moments: [FloatBuffer] { [firstMoment, secondMoment] }

    /// Whether the moments cover the whole parameter buffer (no sharding, or a world of one).
    public var holdsEveryMoment: Bool { shard == 0..<parameterCount }

    /// Trainer's rule: no decay on biases and LayerNorm parameters.
    public static func isDecayed(_ name: String) -> Bool {
        !name.hasSuffix(".bias") && !name.contains(".ln_")
    }

    /// One step of the shard's parameters from their gradients times `gradientScale` (the clipping
    /// factor of `clippingScale`); the rest of both buffers is neither read nor written.
    public func update(parameters: FloatBuffer, gradients: FloatBuffer, learningRate: Double, gradientScale: Float = 1) {
        stepCount += 1
        let t = Double(stepCount)
        var step = Kernels.AdamWStep(decayFactor: 1, stepSize: Float(learningRate / (1 - pow(settings.beta1, t))),
                                     secondCorrection: Float((1 - pow(settings.beta2, t)).squareRoot()),
                                     beta1Complement: Float(1 - settings.beta1), beta2: Float(settings.beta2),
                                     beta2Complement: Float(1 - settings.beta2), epsilon: Float(settings.epsilon),
                                     gradientScale: gradientScale)
        for (ranges, decay) in [(decayedRanges, Float(1 - learningRate * settings.weightDecay)), (undecayedRanges, Float(1))] {
            step.decayFactor = decay
            for range in ranges {
                let moment = range.lowerBound - shard.lowerBound
                Kernels.adamW(parameters: parameters.pointer + range.lowerBound, gradients: gradients.pointer + range.lowerBound,
                              firstMoment: firstMoment.pointer + moment, secondMoment: secondMoment.pointer + moment,
                              count: range.count, step: step)
            }
        }
    }
}

extension GPT2Config {
    /// Throws unless training fits in this machine's memory: the parameters, their gradients and
    /// AdamW's two moments (under ZeRO-1 spread over the ranks, so not counted), naming `source`.
    public func requireTrainingMemory(source: String, zeroStage: Int = 0) throws {
        if zeroStage == 1 {
            try requireMemory(copies: 2, companions: "their gradients", source: source)
        } else {
            try requireMemory(copies: 4, companions: "their gradients and AdamW's two moments", source: source)
        }
    }
}

/// The factor `clip_grad_norm_` multiplies the gradients by, for their global L2 `norm`:
/// maxNorm / (norm + 1e-6) where that is below 1, else 1 (and 1 when maxNorm is 0, no clipping).
/// AdamW applies the factor as it reads each gradient, which saves a pass over the buffer and
/// gives the same floats as scaling first.
public func clippingScale(norm: Double, maxNorm: Double) -> Float {
    guard maxNorm > 0 else { return 1 }
    return Float(min(1, maxNorm / (norm + 1e-6)))
}
