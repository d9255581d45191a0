import Foundation

/// The learning rate as one function of the step, as `transformers`' schedulers give it: the
/// update with 0-based index k uses `learningRate(at: k)`, so with warmup the first one is 0.
public struct LearningRateSchedule: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case linear, cosine, constant
        case constantWithWarmup = "constant_with_warmup"
    }

    public var kind: Kind
    public var peak: Double
    public var warmupSteps: Int
    public var totalSteps: Int

    public init(kind: Kind, peak: Double, warmupSteps: Int, totalSteps: Int) {
        self.kind = kind
        self.peak = peak
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
    }

    public func learningRate(at step: Int) -> Double {
        if kind == .constant { return peak }
        if step < warmupSteps { return peak * Double(step) / Double(max(1, warmupSteps)) }
        let progress = Double(step - warmupSteps) / Double(max(1, totalSteps - warmupSteps))
        switch kind {
        case .linear: return peak * max(0, Double(totalSteps - step) / Double(max(1, totalSteps - warmupSteps)))
        case .cosine: return peak * max(0, 0.5 * (1 + cos(Double.pi * progress)))
        case .constant, .constantWithWarmup: return peak
        }
    }

    /// `--warmup-steps`: a whole number of steps, or a ratio below 1 of the total (rounded up, as
    /// `get_warmup_steps` does).
    public static func warmupSteps(_ text: String, totalSteps: Int) -> Int? {
        guard let value = Double(text), value >= 0, value.isFinite else { return nil }
        if value < 1 && value > 0 { return Int((value * Double(totalSteps)).rounded(.up)) }
        return Int(exactly: value)
    }
}
