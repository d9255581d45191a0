import Foundation

/// Where a command's output goes: standard output and error for the program, a buffer in tests.
public final class Console: @unchecked Sendable {  // writes are serialised by `lock`
    private let lock = NSLock()
    private let writeOutput: (String) -> Void
    private let writeError: (String) -> Void

    public init(output: @escaping (String) -> Void, error: @escaping (String) -> Void) {
        self.writeOutput = output
        self.writeError = error
    }

    public static let standard = Console(
        output: { text in FileHandle.standardOutput.write(Data((text + "\n").utf8)) },
        error: { text in FileHandle.standardError.write(Data((text + "\n").utf8)) })

    /// One line of the command's result, on standard output.
    public func print(_ line: String) { lock.withLock { writeOutput(line) } }

    /// One line of diagnostics (warnings, progress), on standard error.
    public func warn(_ line: String) { lock.withLock { writeError(line) } }
}
