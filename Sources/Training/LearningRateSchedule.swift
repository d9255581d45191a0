import Foundation
import GPT2

/// The learning rate as one function of the step, as `transformers.get_scheduler` gives it: the
/// update with 0-based index k uses `learningRate(at: k)` (the LambdaLR's rate before its k-th
/// `step()`), so with warmup the first one is 0.
public struct LearningRateSchedule: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case linear, cosine
        case cosineWithRestarts = "cosine_with_restarts"
        case polynomial, constant
        case constantWithWarmup = "constant_with_warmup"
        case inverseSqrt = "inverse_sqrt"
        case cosineWithMinLR = "cosine_with_min_lr"
        case warmupStableDecay = "warmup_stable_decay"

        /// The `--lr-scheduler-kwargs` keys its `transformers` function takes. `last_epoch` is left
        /// out everywhere: resuming restores the step itself. `constant` and `constant_with_warmup`
        /// take none (`get_scheduler` drops any it is given; here they are refused).
        public var keys: [Options.CodingKeys] {
            switch self {
            case .linear, .constant, .constantWithWarmup: return []
            case .cosine, .cosineWithRestarts: return [.numCycles]
            case .polynomial: return [.lrEnd, .power]
            case .inverseSqrt: return [.timescale]
            case .cosineWithMinLR: return [.numCycles, .minLR, .minLRRate]
            case .warmupStableDecay: return [.numDecaySteps, .numStableSteps, .warmupType, .decayType, .minLRRatio, .numCycles]
            }
        }

        /// `TrainingArguments`' default.
        public static let `default` = Kind.linear

        /// `num_cycles` when not given: half a cosine, or one cycle for hard restarts.
        public var defaultNumCycles: Double { self == .cosineWithRestarts ? 1 : 0.5 }
    }

    /// How `warmup_stable_decay` rises and falls.
    public enum Shape: String, Codable, Sendable, CaseIterable {
        case linear, cosine
        case oneMinusSqrt = "1-sqrt"
    }

    /// `--lr-scheduler-kwargs`, under `transformers`' names; nil is the function's default (below).
    public struct Options: Codable, Sendable, Equatable {
        public var numCycles: Double?
        public var lrEnd: Double?
        public var power: Double?
        public var timescale: Int?
        public var minLR: Double?
        public var minLRRate: Double?
        /// Required by `warmup_stable_decay`, as `get_wsd_schedule` requires it.
        public var numDecaySteps: Int?
        /// nil: what the warmup and decay leave of the total.
        public var numStableSteps: Int?
        public var warmupType: Shape?
        public var decayType: Shape?
        public var minLRRatio: Double?

        public static let defaultLREnd = 1e-7
        public static let defaultPower = 1.0
        /// `inverse_sqrt`'s timescale when there is no warmup to take it from.
        public static let defaultTimescale = 10_000
        public static let defaultWarmupType = Shape.linear
        public static let defaultDecayType = Shape.cosine
        public static let defaultMinLRRatio = 0.0

        public enum CodingKeys: String, CodingKey {
            case numCycles = "num_cycles", lrEnd = "lr_end", power, timescale, minLR = "min_lr", minLRRate = "min_lr_rate"
            case numDecaySteps = "num_decay_steps", numStableSteps = "num_stable_steps", warmupType = "warmup_type"
            case decayType = "decay_type", minLRRatio = "min_lr_ratio"
        }

        public init() {}

        /// Reads `--lr-scheduler-kwargs` for `kind`, refusing what `transformers` would refuse
        /// (and keys it would ignore) in one line naming the flag; `peak` is the learning rate
        /// that `lr_end` and `min_lr` are compared with.
        public init(json text: String, for kind: Kind, peak: Double) throws {
            func problem(_ message: String) -> TrainingError { .invalidSetting("--lr-scheduler-kwargs: " + message) }
            guard let object = try? JSONDecoder().decode([String: JSONValue].self, from: Data(text.utf8)) else {
                throw problem("expects a JSON object such as {\"num_cycles\": 2}, got '\(text.split(whereSeparator: \.isNewline).joined(separator: " "))'")
            }
            let taken = kind.keys.map(\.stringValue)
            let takes = taken.isEmpty ? "takes none" : "takes " + taken.joined(separator: ", ")
            for key in object.keys.sorted() where !taken.contains(key) {
                throw problem("\(kind.rawValue) has no setting '\(key)' (it \(takes))")
            }
            // Python's None is the default for the parameters typed Optional in transformers.
            let nullable: Set<CodingKeys> = [.timescale, .minLR, .minLRRate, .numStableSteps]
            func value(_ key: CodingKeys) throws -> JSONValue? {
                guard let value = object[key.stringValue] else { return nil }
                if value == .null {
                    if nullable.contains(key) { return nil }
                    throw problem("\(key.stringValue) must not be null")
                }
                return value
            }
            /// A finite number that `accepts` takes.
            func number(_ key: CodingKeys, _ wanted: String, _ accepts: (Double) -> Bool) throws -> Double? {
                guard let given = try value(key) else { return nil }
                guard case let .number(number) = given, number.isFinite, accepts(number) else {
                    throw problem("\(key.stringValue) must be a number \(wanted), got \(jsonText(given))")
                }
                return number
            }
            /// A whole number of steps: at most 2^53, so that the step arithmetic neither overflows
            /// nor leaves the integers a Double holds exactly (Python computes on unbounded ints).
            func steps(_ key: CodingKeys, minimum: Int) throws -> Int? {
                guard let given = try value(key) else { return nil }
                guard case let .number(number) = given, let whole = Int(exactly: number), whole >= minimum, whole <= 1 << 53 else {
                    throw problem("\(key.stringValue) must be a whole number of at least \(minimum), got \(jsonText(given))")
                }
                return whole
            }
            func shape(_ key: CodingKeys) throws -> Shape? {
                guard let given = try value(key) else { return nil }
                guard case let .string(name) = given, let shape = Shape(rawValue: name) else {
                    throw problem("\(key.stringValue) must be one of \(Shape.allCases.map(\.rawValue).joined(separator: ", ")), got \(jsonText(given))")
                }
                return shape
            }
            numCycles = try number(.numCycles, "of 0 or more") { $0 >= 0 }
            lrEnd = try number(.lrEnd, "of 0 or more") { $0 >= 0 }
            power = try number(.power, "of 0 or more") { $0 >= 0 }
            timescale = try steps(.timescale, minimum: 1)
            // min_lr becomes a ratio of the peak, so the peak must not be 0.
            minLR = try number(.minLR, "from 0 to --learning-rate (\(peak))") { $0 >= 0 && $0 <= peak && peak > 0 }
            minLRRate = try number(.minLRRate, "from 0 to 1") { (0...1).contains($0) }
            numDecaySteps = try steps(.numDecaySteps, minimum: 0)
            numStableSteps = try steps(.numStableSteps, minimum: 0)
            warmupType = try shape(.warmupType)
            decayType = try shape(.decayType)
            minLRRatio = try number(.minLRRatio, "from 0 to 1") { (0...1).contains($0) }
            // get_polynomial_decay_schedule_with_warmup's check, of the default lr_end too.
            if kind == .polynomial, !(peak > (lrEnd ?? Self.defaultLREnd)) {
                throw problem("lr_end (\(lrEnd ?? Self.defaultLREnd)) must be smaller than --learning-rate (\(peak))")
            }
            if kind == .cosineWithMinLR && (minLR == nil) == (minLRRate == nil) {
                throw problem("cosine_with_min_lr needs exactly one of min_lr and min_lr_rate, e.g. {\"min_lr_rate\": 0.1}")
            }
            if kind == .warmupStableDecay && numDecaySteps == nil {
                throw problem("warmup_stable_decay needs num_decay_steps, e.g. {\"num_decay_steps\": 100}")
            }
        }
    }

    public var kind: Kind
    public var peak: Double
    public var warmupSteps: Int
    public var totalSteps: Int
    public var options: Options

    public init(kind: Kind, peak: Double, warmupSteps: Int, totalSteps: Int, options: Options = Options()) {
        self.kind = kind
        self.peak = peak
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
        self.options = options
    }

    /// `peak` times the LambdaLR's factor, as torch multiplies them.
    public func learningRate(at step: Int) -> Double { peak * factor(at: step) }

    /// Each scheduler's lambda from `transformers.optimization`, with its operations in the same
    /// order, so that the rates agree with Python's to the last bit or nearly.
    func factor(at step: Int) -> Double {
        let warmup = Double(step) / Double(max(1, warmupSteps))
        let numCycles = options.numCycles ?? kind.defaultNumCycles
        switch kind {
        case .constant: return 1
        case .constantWithWarmup: return step < warmupSteps ? warmup : 1
        case .linear:
            if step < warmupSteps { return warmup }
            return max(0, Double(totalSteps - step) / Double(max(1, totalSteps - warmupSteps)))
        case .cosine, .cosineWithMinLR:
            if step < warmupSteps { return warmup }
            let progress = Double(step - warmupSteps) / Double(max(1, totalSteps - warmupSteps))
            // Plain cosine is the same lambda with a floor of 0.
            let floor = kind == .cosine ? 0 : options.minLRRate ?? (options.minLR ?? 0) / peak
            let cosine = 0.5 * (1 + cos(Double.pi * numCycles * 2 * progress))
            return max(0, cosine * (1 - floor) + floor)
        case .cosineWithRestarts:
            if step < warmupSteps { return warmup }
            let progress = Double(step - warmupSteps) / Double(max(1, totalSteps - warmupSteps))
            if progress >= 1 { return 0 }
            // Python's % for a non-negative dividend, as here.
            return max(0, 0.5 * (1 + cos(Double.pi * (numCycles * progress).truncatingRemainder(dividingBy: 1))))
        case .polynomial:
            if step < warmupSteps { return warmup }
            let lrEnd = options.lrEnd ?? Options.defaultLREnd
            if step > totalSteps { return lrEnd / peak }
            let remaining = 1 - Double(step - warmupSteps) / Double(totalSteps - warmupSteps)
            return ((peak - lrEnd) * pow(remaining, options.power ?? Options.defaultPower) + lrEnd) / peak
        case .inverseSqrt:
            if step < warmupSteps { return warmup }
            let timescale = options.timescale ?? (warmupSteps > 0 ? warmupSteps : Options.defaultTimescale)
            return 1 / (Double(step + timescale - warmupSteps) / Double(timescale)).squareRoot()
        case .warmupStableDecay:
            let ratio = options.minLRRatio ?? Options.defaultMinLRRatio
            let decaySteps = options.numDecaySteps ?? 0
            let stableSteps = options.numStableSteps ?? totalSteps - warmupSteps - decaySteps
            if step < warmupSteps {
                let shaped: Double
                switch options.warmupType ?? Options.defaultWarmupType {
                case .linear: shaped = warmup
                case .cosine: shaped = 0.5 * (1 - cos(Double.pi * warmup))
                case .oneMinusSqrt: shaped = 1 - (1 - warmup).squareRoot()
                }
                return max(0, shaped * (1 - ratio) + ratio)
            }
            if step < warmupSteps + stableSteps { return 1 }
            guard step < warmupSteps + stableSteps + decaySteps else { return ratio }
            let progress = Double(step - warmupSteps - stableSteps) / Double(max(1, decaySteps))
            let shaped: Double
            switch options.decayType ?? Options.defaultDecayType {
            case .linear: shaped = 1 - progress
            case .cosine: shaped = 0.5 * (1 + cos(Double.pi * numCycles * 2 * progress))
            case .oneMinusSqrt: shaped = 1 - progress.squareRoot()
            }
            return max(0, shaped * (1 - ratio) + ratio)
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

private func jsonText(_ value: JSONValue) -> String {
    (try? JSONEncoder().encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "?"
}
