/// Problems a run meets, each one line naming what is wrong.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case io(path: String, problem: String)
    case invalidSetting(String)
    /// The run must not go ahead in this output directory (it would lose or mix in what is there).
    case refused(String)
    case cannotResume(path: String, problem: String)
    case noTargets(step: Int)
    /// A loss or gradient norm that is NaN or infinite.
    case notFinite(String)
    case replicasDiverged(step: Int, ranks: [Int])
    case rankDisagrees(rank: Int, what: String)

    public var description: String {
        switch self {
        case let .io(path, problem): return "\(path): \(problem)"
        case let .invalidSetting(problem), let .refused(problem), let .notFinite(problem): return problem
        case let .cannotResume(path, problem): return "\(path): cannot resume: \(problem)"
        case let .replicasDiverged(step, ranks):
            return "at step \(step) the parameters of rank(s) \(ranks.map(String.init).joined(separator: ", ")) differ from rank 0's; the replicas are no longer identical"
        case let .rankDisagrees(rank, what):
            return "rank \(rank) \(what) differs from rank 0's; every rank must be started with the same files and flags"
        case let .noTargets(step): return "step \(step) has no token to predict in its whole global batch (every label is -100)"
        }
    }
}
