import GPT2
import Kernels

/// `--num-threads`: the compute threads of this process (of each rank, under MPI).
enum ComputeThreads {
    static let flag = Flag.option("--num-threads", "N", "compute threads (default: the cores this process may run on, \(Kernels.availableCoreCount); one per rank under launch/local)",
                                  maximum: CountLimit.threads)

    static func apply(_ arguments: ParsedArguments) throws {
        guard let threads = try arguments.int("--num-threads") else { return }
        guard threads > 0 else { throw CLIError.usage(command: arguments.command, message: "--num-threads must be positive") }
        Kernels.threadCount = threads
    }
}
