import Foundation

/// Paths and comparisons the test targets share.
public enum TestPaths {
    /// The package root, found from this file's location (Tests/TestSupport/TestSupport.swift).
    public static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The shared data folder that sits beside the repository (see its README).
    public static let sharedData = packageRoot.deletingLastPathComponent().appendingPathComponent("shared/data")

    public static let modelFixtures = packageRoot.appendingPathComponent("Tests/GPT2Tests/Fixtures")

    /// A fresh, empty directory under the system's temporary folder.
    public static func temporaryDirectory(_ label: String = "test") throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("gpt2-ddp-\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// The built `gpt2-ddp` executable, which SwiftPM puts beside the test bundle.
    public static var executable: URL {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("gpt2-ddp")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return packageRoot.appendingPathComponent(".build/debug/gpt2-ddp")
    }
}

/// The result of running a program: exit status and everything it printed.
public struct ProcessResult {
    public let status: Int32
    public let output: String
    public let error: String
}

public func runProcess(_ executable: URL, _ arguments: [String], environment: [String: String] = [:]) throws -> ProcessResult {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let output = Pipe(), error = Pipe()
    process.standardOutput = output
    process.standardError = error
    try process.run()
    let outputData = output.fileHandleForReading.readDataToEndOfFile()
    let errorData = error.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return ProcessResult(status: process.terminationStatus, output: String(decoding: outputData, as: UTF8.self),
                         error: String(decoding: errorData, as: UTF8.self))
}

/// max |a - b| / max |b|: the error relative to the reference tensor's scale, so that entries that
/// are zero in exact arithmetic (and noise in floats) do not dominate.
public func relativeError(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count, "sizes differ: \(a.count) vs \(b.count)")
    var maximumDifference = 0.0, scale = 0.0
    for i in a.indices {
        maximumDifference = max(maximumDifference, abs(Double(a[i]) - Double(b[i])))
        scale = max(scale, abs(Double(b[i])))
    }
    return scale == 0 ? maximumDifference : maximumDifference / scale
}

/// Runs `gpt2-ddp` as `ranks` MPI ranks on this machine (more ranks than cores allowed; root
/// allowed, as CI runs as root; idle ranks yield their core instead of spinning).
public func runMPI(ranks: Int, _ arguments: [String]) throws -> ProcessResult {
    let mpirun = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/bin/mpirun"
    return try runProcess(URL(fileURLWithPath: mpirun),
                          ["--oversubscribe", "--mca", "mpi_yield_when_idle", "1", "-np", String(ranks), TestPaths.executable.path] + arguments,
                          environment: ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"])
}

/// What `runMeasuringMemory` reports.
public struct MeasuredRun {
    public let status: Int32
    public let error: String
    /// The most memory the process held resident at once (its VmHWM).
    public let peakResidentBytes: Int
}

/// Runs a program to its end with its standard output discarded, and measures its peak resident
/// memory. That is read from /proc while it runs, missing at most its last few milliseconds:
/// getrusage's figure for a child also counts this test process's own memory, which the child's
/// address space was a copy of until it started the program.
public func runMeasuringMemory(_ executable: URL, _ arguments: [String]) throws -> MeasuredRun {
    let errorPath = try TestPaths.temporaryDirectory("stderr").appendingPathComponent("stderr.txt").path
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, errorPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    let argv = ([executable.path] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid = pid_t()
    let spawned = posix_spawn(&pid, executable.path, &actions, nil, argv, environ)
    guard spawned == 0 else { throw POSIXError(POSIXErrorCode(rawValue: spawned) ?? .EINVAL) }
    var peakKilobytes = 0
    var status: Int32 = 0
    while true {
        let fields = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8))?.split(separator: "\n") ?? []
        if let line = fields.first(where: { $0.hasPrefix("VmHWM:") }), let kilobytes = Int(line.split(whereSeparator: \.isWhitespace)[1]) {
            peakKilobytes = max(peakKilobytes, kilobytes)
        }
        let waited = waitpid(pid, &status, WNOHANG)
        if waited == pid { break }
        guard waited == 0 || errno == EINTR else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EINVAL) }
        usleep(2_000)
    }
    // A normal exit keeps its code in bits 8-15; a signal leaves the low 7 bits non-zero.
    let exitStatus = status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    return MeasuredRun(status: exitStatus, error: (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "",
                       peakResidentBytes: peakKilobytes * 1024)
}
