/// Problems with a model's files or inputs, each a one-line message naming what is wrong.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case missingFile(path: String)
    case invalidConfig(source: String, problem: String)
    case incompatibleWeights(path: String, problem: String)
    case invalidBatch(problem: String)

    public var description: String {
        switch self {
        case let .missingFile(path): return "\(path): no such file"
        case let .invalidConfig(source, problem): return "\(source): \(problem)"
        case let .incompatibleWeights(path, problem): return "\(path): \(problem)"
        case let .invalidBatch(problem): return "invalid batch: \(problem)"
        }
    }
}
