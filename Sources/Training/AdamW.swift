import Foundation
import GPT2

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
    /// exp_avg and exp_avg_sq, laid out like the parameters.
    public let firstMoment: FloatBuffer
    public let secondMoment: FloatBuffer
    /// Updates taken so far (torch's `step` state).
    public var stepCount = 0
    private let decayedRanges: [Range<Int>]
    private let undecayedRanges: [Range<Int>]

    public init(layout: ParameterLayout, settings: Settings) {
        self.settings = settings
        firstMoment = FloatBuffer(count: layout.totalCount)
        secondMoment = FloatBuffer(count: layout.totalCount)
        decayedRanges = layout.tensors.filter { Self.isDecayed($0.name) }.map(\.range)
        undecayedRanges = layout.tensors.filter { !Self.isDecayed($0.name) }.map(\.range)
    }

    /// Trainer's rule: no decay on biases and LayerNorm parameters.
    public static func isDecayed(_ name: String) -> Bool {
        !name.hasSuffix(".bias") && !name.contains(".ln_")
    }

    /// One step from the gradients times `gradientScale` (the clipping factor of `gradientClipping`).
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
                Kernels.adamW(parameters: parameters.pointer + range.lowerBound, gradients: gradients.pointer + range.lowerBound,
                              firstMoment: firstMoment.pointer + range.lowerBound, secondMoment: secondMoment.pointer + range.lowerBound,
                              count: range.count, step: step)
            }
        }
    }
}

extension GPT2Config {
    /// Throws unless training fits in this machine's memory: the parameters, their gradients and
    /// AdamW's two moments, naming `source`.
    public func requireTrainingMemory(source: String) throws {
        try requireMemory(copies: 4, companions: "their gradients and AdamW's two moments", source: source)
    }
}

/// The global L2 norm of `gradients` and the factor `clip_grad_norm_` multiplies them by:
/// maxNorm / (norm + 1e-6) where that is below 1, else 1 (and 1 when maxNorm is 0, no clipping).
/// AdamW applies the factor as it reads each gradient, which saves a pass over the buffer and
/// gives the same floats as scaling first.
public func gradientClipping(_ gradients: FloatBuffer, maxNorm: Double) -> (norm: Double, scale: Float) {
    let norm = Kernels.sumOfSquares(gradients.pointer, count: gradients.count).squareRoot()
    guard maxNorm > 0 else { return (norm, 1) }
    return (norm, Float(min(1, maxNorm / (norm + 1e-6))))
}
