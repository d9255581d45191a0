/// Problems a run meets, each one line naming what is wrong.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case io(path: String, problem: String)
    case invalidSetting(String)
    case cannotResume(path: String, problem: String)
    case noTargets(step: Int)

    public var description: String {
        switch self {
        case let .io(path, problem): return "\(path): \(problem)"
        case let .invalidSetting(problem): return problem
        case let .cannotResume(path, problem): return "\(path): cannot resume: \(problem)"
        case let .noTargets(step): return "step \(step) has no token to predict in its whole global batch (every label is -100)"
        }
    }
}
