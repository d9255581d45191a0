/// A flag a command accepts. A flag without `valueName` is a switch (`--greedy`); one with a value
/// takes it as `--name VALUE` or `--name=VALUE`.
public struct Flag: Sendable {
    public let name: String
    public let valueName: String?
    public let help: String
    public let defaultValue: String?
    public let repeatable: Bool
    /// The largest value a numeric flag accepts, shown in the help and checked when the value is read.
    public let maximum: Int?

    public static func option(_ name: String, _ valueName: String, _ help: String, default defaultValue: String? = nil, repeatable: Bool = false,
                              maximum: Int? = nil) -> Flag {
        Flag(name: name, valueName: valueName, help: help, defaultValue: defaultValue, repeatable: repeatable, maximum: maximum)
    }

    public static func toggle(_ name: String, _ help: String) -> Flag {
        Flag(name: name, valueName: nil, help: help, defaultValue: nil, repeatable: false, maximum: nil)
    }
}

/// Upper bounds of the count flags: far beyond any run this program can make, and small enough that
/// every product formed from them fits an Int (examples per step = batch x accumulation x ranks, up
/// to 2^20 per rank times 2^31 ranks; batch x tokens; the step counter), so no count traps.
public enum CountLimit {
    /// Sequences in one batch on one rank.
    public static let batchSize = 1 << 16
    /// Micro-batches per optimisation step.
    public static let accumulationSteps = 1 << 16
    /// Examples one rank contributes to one optimisation step (batch x accumulation).
    public static let examplesPerRankStep = 1 << 20
    /// Examples of a data set.
    public static let examples = 1 << 40
    /// Optimisation steps, and the intervals counted in steps.
    public static let steps = 1_000_000_000
    /// Epochs.
    public static let epochs = 1_000_000
    /// Tokens of a sequence: lengths, block sizes, n-gram sizes.
    public static let tokens = 1 << 20
    /// Compute threads: glibc's CPU set holds 1024 CPUs.
    public static let threads = 1024
    /// Megabytes of one buffer handed to MPI.
    public static let megabytes = 1 << 16
    /// Timed repetitions of a measurement.
    public static let repetitions = 1_000_000
}

/// What a subcommand accepts, enough to parse its arguments and print its `--help`.
public struct CommandSpec: Sendable {
    public let name: String
    public let summary: String
    public let positionals: [(name: String, help: String)]
    public let flags: [Flag]

    public init(name: String, summary: String, positionals: [(name: String, help: String)] = [], flags: [Flag]) {
        self.name = name
        self.summary = summary
        self.positionals = positionals
        self.flags = flags
    }

    public var help: String {
        var lines = ["usage: gpt2-ddp \(name)" + positionals.map { " \($0.name)" }.joined() + (flags.isEmpty ? "" : " [flags]"), "", summary]
        if !positionals.isEmpty {
            lines.append("")
            lines.append("arguments:")
            for positional in positionals { lines.append("  " + pad(positional.name) + positional.help) }
        }
        lines.append("")
        lines.append("flags:")
        for flag in flags + [.toggle("--help", "show this help")] {
            let label = flag.name + (flag.valueName.map { " \($0)" } ?? "")
            var text = flag.help
            if let value = flag.defaultValue { text += " (default: \(value))" }
            if let maximum = flag.maximum { text += " (at most \(maximum))" }
            if flag.repeatable { text += " (repeatable)" }
            lines.append("  " + pad(label) + text)
        }
        return lines.joined(separator: "\n")
    }

    private func pad(_ label: String) -> String {
        label.count < 32 ? label + String(repeating: " ", count: 32 - label.count) : label + "  "
    }

    /// Parses `arguments` (everything after the subcommand's name).
    public func parse(_ arguments: [String]) throws -> ParsedArguments {
        let byName = Dictionary(uniqueKeysWithValues: flags.map { ($0.name, $0) })
        var parsed = ParsedArguments(command: name)
        parsed.maxima = byName.compactMapValues(\.maximum)
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("-"), argument != "-" else {
                parsed.positionals.append(argument)
                continue
            }
            if argument == "--" {
                parsed.positionals += arguments[index...]
                break
            }
            var flagName = argument
            var inlineValue: String?
            if let equals = argument.firstIndex(of: "=") {
                flagName = String(argument[..<equals])
                inlineValue = String(argument[argument.index(after: equals)...])
            }
            guard let flag = byName[flagName] else {
                throw CLIError.usage(command: name, message: "unknown flag '\(flagName)'")
            }
            guard flag.valueName != nil else {
                if inlineValue != nil { throw CLIError.usage(command: name, message: "\(flag.name) takes no value") }
                parsed.switches.insert(flag.name)
                continue
            }
            let value: String
            if let inlineValue {
                value = inlineValue
            } else {
                guard index < arguments.count else { throw CLIError.usage(command: name, message: "\(flag.name) needs a value") }
                value = arguments[index]
                index += 1
            }
            if !flag.repeatable, parsed.values[flag.name] != nil {
                throw CLIError.usage(command: name, message: "\(flag.name) is given more than once")
            }
            parsed.values[flag.name, default: []].append(value)
        }
        guard parsed.positionals.count <= positionals.count else {
            throw CLIError.usage(command: name, message: "unexpected argument '\(parsed.positionals[positionals.count])'")
        }
        for flag in flags {
            if let value = flag.defaultValue, parsed.values[flag.name] == nil { parsed.values[flag.name] = [value] }
        }
        return parsed
    }
}

/// Parsed flag values with typed accessors whose errors name the flag.
public struct ParsedArguments: Sendable {
    public let command: String
    public var values: [String: [String]] = [:]
    public var switches: Set<String> = []
    public var positionals: [String] = []
    /// The flags' declared maxima, which `int` and `double` enforce.
    public var maxima: [String: Int] = [:]

    public init(command: String) { self.command = command }

    public func string(_ name: String) -> String? { values[name]?.last }
    public func strings(_ name: String) -> [String] { values[name] ?? [] }
    public func isSet(_ name: String) -> Bool { switches.contains(name) }

    public func required(_ name: String) throws -> String {
        guard let value = string(name) else { throw CLIError.usage(command: command, message: "\(name) is required") }
        return value
    }

    public func positional(_ index: Int, _ name: String) throws -> String {
        guard index < positionals.count else { throw CLIError.usage(command: command, message: "\(name) is required") }
        return positionals[index]
    }

    public func int(_ name: String) throws -> Int? {
        guard let text = string(name) else { return nil }
        guard let value = Int(text) else { throw CLIError.usage(command: command, message: "\(name) expects an integer, got '\(text)'") }
        try checkMaximum(name, Double(value), text)
        return value
    }

    public func double(_ name: String) throws -> Double? {
        guard let text = string(name) else { return nil }
        guard let value = Double(text), value.isFinite else {
            throw CLIError.usage(command: command, message: "\(name) expects a number, got '\(text)'")
        }
        try checkMaximum(name, value, text)
        return value
    }

    private func checkMaximum(_ name: String, _ value: Double, _ text: String) throws {
        guard let maximum = maxima[name], value > Double(maximum) else { return }
        throw CLIError.usage(command: command, message: "\(name) must be at most \(maximum), got \(text)")
    }
}

public enum CLIError: Error, CustomStringConvertible {
    /// Wrong arguments: the message is followed by a pointer to `--help`.
    case usage(command: String, message: String)
    /// The arguments are well formed but this run must not go ahead (it would lose or mix in what
    /// is already there): a usage error too, so that a supervisor does not retry it.
    case refusal(String)
    case failure(String)

    public var description: String {
        switch self {
        case let .usage(command, message):
            return "\(message) (see 'gpt2-ddp \(command)\(command.isEmpty ? "" : " ")--help')"
        case let .refusal(message), let .failure(message): return message
        }
    }
}
