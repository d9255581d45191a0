/// A flag a command accepts. A flag without `valueName` is a switch (`--greedy`); one with a value
/// takes it as `--name VALUE` or `--name=VALUE`.
public struct Flag: Sendable {
    public let name: String
    public let valueName: String?
    public let help: String
    public let defaultValue: String?
    public let repeatable: Bool

    public static func option(_ name: String, _ valueName: String, _ help: String, default defaultValue: String? = nil, repeatable: Bool = false) -> Flag {
        Flag(name: name, valueName: valueName, help: help, defaultValue: defaultValue, repeatable: repeatable)
    }

    public static func toggle(_ name: String, _ help: String) -> Flag {
        Flag(name: name, valueName: nil, help: help, defaultValue: nil, repeatable: false)
    }
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
        return value
    }

    public func double(_ name: String) throws -> Double? {
        guard let text = string(name) else { return nil }
        guard let value = Double(text), value.isFinite else {
            throw CLIError.usage(command: command, message: "\(name) expects a number, got '\(text)'")
        }
        return value
    }
}

public enum CLIError: Error, CustomStringConvertible {
    /// Wrong arguments: the message is followed by a pointer to `--help`.
    case usage(command: String, message: String)
    case failure(String)

    public var description: String {
        switch self {
        case let .usage(command, message):
            return "\(message) (see 'gpt2-ddp \(command)\(command.isEmpty ? "" : " ")--help')"
        case let .failure(message): return message
        }
    }
}
