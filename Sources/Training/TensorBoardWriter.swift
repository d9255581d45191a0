import Foundation
import GPT2
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

extension TrainingArguments {
    /// `--report-to`, as `TrainingArguments.report_to`: `all` is every integration this program
    /// has, which is TensorBoard alone.
    public enum ReportTarget: String, Codable, Sendable, CaseIterable {
        case none, tensorboard, all
    }
}

/// Writes a run's metrics as TensorBoard event files, the scalars `Trainer`'s TensorBoardCallback
/// writes, without TensorFlow or protobuf: one `events.out.tfevents.*` file per start of a run,
/// appended to with one `write` per logged record, so that what TensorBoard reads is never more
/// than the last log behind.
public final class TensorBoardWriter {
    public let path: String
    private let descriptor: Int32

    /// Like `_global_uid` in TensorBoard's writer: files that one process opens in the same second
    /// get different names.
    private static let filesOpened = Atomic<Int>(0)

    /// The name TensorBoard's (and torch.utils.tensorboard's) writer gives a new event file:
    /// `events.out.tfevents.SECONDS.HOST.PID.N`, N counting the files this process has opened.
    /// TensorBoard reads a folder's files in name order, so N has six digits (as SECONDS has
    /// ten): files one process opens in the same second are read in the order it opened them
    /// (unpadded, a resumed run's ".10" was read before the first run's ".9").
    public static func nextFileName() -> String {
        let count = filesOpened.add(1, ordering: .relaxed).oldValue
        return String(format: "events.out.tfevents.%010ld.%@.%d.%06ld", Int(Date().timeIntervalSince1970), hostName(), getpid(), count)
    }

    /// Creates `directory` if needed and a new event file `fileName` in it, starting with the
    /// file_version event. A file of that name is never overwritten.
    public init(directory: String, fileName: String = TensorBoardWriter.nextFileName()) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) && !isDirectory.boolValue {
            throw TrainingError.io(path: directory, problem: "is a file, not a directory (--logging-dir must be a directory)")
        }
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw TrainingError.io(path: directory, problem: "cannot create the --logging-dir: \(RunDirectory.reason(error))")
        }
        path = URL(fileURLWithPath: directory).appendingPathComponent(fileName).path
        descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw TrainingError.io(path: path, problem: "cannot be created: \(String(cString: strerror(errno)))") }
        try writeEvents([TensorBoardEvent.fileVersion(wallTime: Date().timeIntervalSince1970, writer: "gpt2-ddp")])
    }

    deinit { close(descriptor) }

    /// Trainer's `rewrite_logs`: `eval_X` becomes `eval/X`, `test_X` `test/X`, any other key `train/X`.
    public static func tag(for key: String) -> String {
        for prefix in ["eval", "test"] where key.hasPrefix(prefix + "_") { return prefix + "/" + key.dropFirst(prefix.count + 1) }
        return "train/" + key
    }

    /// The scalars TensorBoardCallback writes for a record, sorted by tag: every number (and
    /// boolean, which Python's `add_scalar` takes as 1 or 0) under its rewritten key. `step` is
    /// the events' step rather than a metric (Trainer's logs do not hold it); texts and lists are
    /// left out. A non-finite value is kept, as TensorBoard's writer keeps it: metrics.jsonl has
    /// null where the event has a float infinity or NaN.
    public static func scalars(_ record: MetricsRecord) -> [(tag: String, value: Float)] {
        record.compactMap { key, value -> (tag: String, value: Float)? in
            guard key != "step" else { return nil }
            switch value {
            case let .number(number): return (tag(for: key), Float(number))
            case let .bool(flag): return (tag(for: key), flag ? 1 : 0)
            default: return nil
            }
        }.sorted { $0.tag < $1.tag }
    }

    /// Appends the record's scalars at `step`, one event each as `add_scalar` writes them.
    public func append(_ record: MetricsRecord, step: Int) throws {
        let wallTime = Date().timeIntervalSince1970
        try writeEvents(Self.scalars(record).map { TensorBoardEvent.scalar(wallTime: wallTime, step: step, tag: $0.tag, value: $0.value) })
    }

    /// Marks that the run continues from a checkpoint after `step`: TensorBoard drops the events
    /// of later steps from the earlier files in this directory, which a run that stopped after
    /// its checkpoint wrote and this one writes again (torch's `SummaryWriter(purge_step:)`).
    public func resume(after step: Int) throws {
        try writeEvents([TensorBoardEvent.sessionStart(wallTime: Date().timeIntervalSince1970, step: step + 1)])
    }

    /// One `write` of whole records, so that a crash leaves at most a torn last record, which
    /// TensorBoard's reader stops at.
    private func writeEvents(_ events: [[UInt8]]) throws {
        let bytes = events.flatMap(TensorBoardEvent.record)
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard written == bytes.count else {
            let problem = written < 0 ? String(cString: strerror(errno)) : "only \(written) of \(bytes.count) bytes were written"
            throw TrainingError.io(path: path, problem: "cannot append TensorBoard events: \(problem)")
        }
    }
}

extension TensorBoardWriter {
    /// The folder of the default logging dirs in the output dir, as Trainer's `runs`.
    public static let runsFolderName = "runs"

    /// Trainer's `default_logdir()` name: `runs/Dec02_06-50-12_HOST`, the local start time.
    public static func defaultRunName() -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "MMMdd_HH-mm-ss"
        return formatter.string(from: Date()) + "_" + hostName()
    }

    /// The writer `--report-to` asks for, on rank 0 (whose `runDirectory` it is); nil for `none`.
    /// The logging dir is `--logging-dir`, else OUTPUT/runs/DATE_HOST as Trainer's; a resumed run
    /// continues in the newest folder of OUTPUT/runs that an earlier run of this program wrote
    /// (Trainer would start a new one, which TensorBoard shows as a separate run). A logging dir
    /// inside the output dir is claimed in its manifest before it is made, so that
    /// `--overwrite-output-dir` removes it with the rest of the run; one that already exists and
    /// is not this program's, or lies outside the output dir, is the user's and stays.
    public static func start(for arguments: TrainingArguments, in runDirectory: RunDirectory, log: (String) -> Void) throws -> TensorBoardWriter? {
        guard arguments.reportTo != .none else { return nil }
        let runs = URL(fileURLWithPath: arguments.outputDir).appendingPathComponent(runsFolderName)
        let directory = arguments.loggingDir
            ?? (arguments.resumeFromCheckpoint != nil && runDirectory.owned.contains(runsFolderName) ? newestFolder(in: runs) : nil)
            ?? runs.appendingPathComponent(defaultRunName()).path
        let fileName = nextFileName()
        let output = canonicalPath(arguments.outputDir), file = canonicalPath(URL(fileURLWithPath: directory).appendingPathComponent(fileName).path)
        if file.hasPrefix(output + "/") {
            let topLevel = String(file.dropFirst(output.count + 1).prefix { $0 != "/" })
            if !FileManager.default.fileExists(atPath: URL(fileURLWithPath: output).appendingPathComponent(topLevel).path) {
                try runDirectory.claim([topLevel])
            }
        }
        let writer = try TensorBoardWriter(directory: directory, fileName: fileName)
        log("tensorboard: writing events to \(writer.path)")
        return writer
    }

    /// The subfolder whose contents changed last (a new event file changes its folder's time).
    static func newestFolder(in directory: URL) -> String? {
        let entries = (try? FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: [.isDirectoryKey, .contentModificationDateKey])) ?? []
        return entries.compactMap { url -> (String, Date)? in
            guard let values = try? url.resourceValues(forKeys: [.isDirectoryKey, .contentModificationDateKey]), values.isDirectory == true,
                  let date = values.contentModificationDate else { return nil }
            return (url.path, date)
        }.max { $0.1 < $1.1 }?.0
    }
}
