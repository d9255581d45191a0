/// Problems with a model's files or inputs, each a one-line message naming what is wrong.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case missingFile(path: String)
    case invalidConfig(source: String, problem: String)
    /// A `--config-overrides` that names no field, gives a field a value of the wrong type or
    /// would change a loaded model's shapes: the flag is wrong, not a file.
    case invalidOverride(problem: String)
    case incompatibleWeights(path: String, problem: String)
    case invalidBatch(problem: String)
    /// Buffers that physical memory cannot hold; `neededBytes` is nil when the count overflows.
    case insufficientMemory(source: String?, purpose: String, neededBytes: Int?, availableBytes: Int)
    /// No token can be chosen for `position` (0-based, the prompt included) of a generated sequence.
    case noTokenToChoose(position: Int, problem: String)

    public var description: String {
        switch self {
        case let .missingFile(path): return "\(path): no such file"
        case let .invalidConfig(source, problem): return "\(source): \(problem)"
        case let .invalidOverride(problem): return "--config-overrides: \(problem)"
        case let .incompatibleWeights(path, problem): return "\(path): \(problem)"
        case let .invalidBatch(problem): return "invalid batch: \(problem)"
        case let .insufficientMemory(source, purpose, needed, available):
            let size = needed.map(PhysicalMemory.format) ?? "more than \(PhysicalMemory.format(Int.max))"
            return (source.map { "\($0): " } ?? "") + "needs \(size) for \(purpose); this machine has \(PhysicalMemory.format(available)) of memory"
        case let .noTokenToChoose(position, problem): return "cannot choose the token at position \(position): \(problem)"
        }
    }
}
