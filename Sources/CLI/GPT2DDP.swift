import GPT2
import Kernels
import Training

/// A subcommand: its spec (flags and help) and what it does with parsed arguments.
protocol Command {
    static var spec: CommandSpec { get }
    static func run(_ arguments: ParsedArguments, console: Console) throws
}

/// The `gpt2-ddp` program: dispatches to a subcommand and turns every error into one line on
/// standard error and a non-zero exit code.
public enum GPT2DDP {
    static var commands: [any Command.Type] {
        [ForwardBackwardCommand.self, InfoCommand.self, InitCommand.self, BenchCommand.self, TrainCommand.self, EvaluateCommand.self, TokenizeCommand.self, GenerateCommand.self, PlotCommand.self]
    }

    public static let usageExitCode: Int32 = 2
    public static let failureExitCode: Int32 = 1

    /// A usage error, a refusal or a checkpoint that cannot be resumed exits with 2, which a supervisor
    /// never retries (the same flags would fail the same way); other failures with 1.
    static func exitCode(for error: Error) -> Int32 {
        switch error {
        case let error as CLIError:
            if case .failure = error { return failureExitCode }
            return usageExitCode
        case let error as TrainingError:
            switch error {
            case .refused, .cannotResume: return usageExitCode
            default: return failureExitCode
            }
        case ModelError.invalidOverride, is UnsupportedCPU: return usageExitCode
        default: return failureExitCode
        }
    }

    static var help: String {
        var lines = ["usage: gpt2-ddp <command> [flags]", "",
                     "Fine-tunes and trains GPT-2, data-parallel over MPI ranks.", "", "commands:"]
        for command in commands {
            let name = command.spec.name
            lines.append("  " + name + String(repeating: " ", count: max(2, 20 - name.count)) + command.spec.summary)
        }
        lines.append("")
        lines.append("'gpt2-ddp <command> --help' shows a command's flags.")
        return lines.joined(separator: "\n")
    }

    /// Runs the program on `arguments` (without the program name) and returns the exit code.
    public static func main(arguments: [String], console: Console = .standard) -> Int32 {
        guard let name = arguments.first, name != "--help", name != "-h", name != "help" else {
            console.print(help)
            return arguments.isEmpty ? usageExitCode : 0
        }
        guard let command = commands.first(where: { $0.spec.name == name }) else {
            console.warn("gpt2-ddp: error: unknown command '\(name)' (see 'gpt2-ddp --help')")
            return usageExitCode
        }
        let rest = Array(arguments.dropFirst())
        if rest.contains("--help") || rest.contains("-h") {
            console.print(command.spec.help)
            return 0
        }
        do {
            try CPU.checkForcedPaths()
            try command.run(try command.spec.parse(rest), console: console)
            return 0
        } catch {
            console.warn("gpt2-ddp \(name): error: \(error)")
            return exitCode(for: error)
        }
    }
}
