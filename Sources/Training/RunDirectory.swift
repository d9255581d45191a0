import Foundation
import SafeTensors

#if canImport(Glibc)
import Glibc
#endif

/// A run's output directory, held under an exclusive lock for as long as the run lives, with a
/// manifest of the top-level names this program wrote there. Only those names (and complete
/// checkpoints, which carry their own marker) are ever removed or replaced; anything else in the
/// directory is the user's.
public final class RunDirectory {
    public static let manifestName = ".gpt2-ddp-run.json"
    /// `flock`ed by the run using the directory; the kernel releases it when the process dies.
    public static let lockName = ".gpt2-ddp.lock"

    public let path: String
    /// Top-level names this program wrote, besides the lock, the manifest and the checkpoints.
    public private(set) var owned: Set<String>
    /// Kept open (and locked) until the run ends.
    private let lockDescriptor: Int32
    /// Whether this run made the lock file, which a refusal then takes away again: a directory
    /// that is refused is left as it was.
    private let madeLockFile: Bool

    /// Creates the directory if needed and locks it; a directory another run holds is refused at
    /// once, naming that run's process.
    public init(path: String) throws {
        self.path = path
        try Self.createDirectory(path)
        let lockPath = URL(fileURLWithPath: path).appendingPathComponent(Self.lockName).path
        let made = open(lockPath, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        let descriptor = made >= 0 ? made : open(lockPath, O_RDWR | O_CLOEXEC)
        guard descriptor >= 0 else { throw TrainingError.io(path: lockPath, problem: "cannot be opened: \(String(cString: strerror(errno)))") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: lockPath, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            close(descriptor)
            throw TrainingError.refused("\(path): another gpt2-ddp run is using this output dir (\(holder.isEmpty ? "its process is starting" : holder)); wait for it to end or pick another --output-dir")
        }
        let holder = Array("process \(getpid()) on \(hostName())\n".utf8)
        ftruncate(descriptor, 0)
        _ = holder.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        lockDescriptor = descriptor
        madeLockFile = made >= 0
        owned = []
        let manifestPath = url(Self.manifestName).path
        if let data = FileManager.default.contents(atPath: manifestPath) {
            guard let manifest = try? JSONDecoder().decode(Manifest.self, from: data) else {
                throw TrainingError.io(path: manifestPath, problem: "is not the manifest gpt2-ddp writes (a JSON object with \"files\"); remove it if this directory is not a gpt2-ddp run")
            }
            owned = Set(manifest.files)
        }
    }

    deinit { close(lockDescriptor) }

    /// Whether the manifest of the run in `directory` lists `name`, read without taking the lock
    /// (for a command that writes one of a finished run's files again, as `plot` does).
    public static func lists(_ name: String, in directory: String) -> Bool {
        let manifest = URL(fileURLWithPath: directory).appendingPathComponent(manifestName).path
        guard let data = FileManager.default.contents(atPath: manifest), let files = try? JSONDecoder().decode(Manifest.self, from: data).files else { return false }
        return files.contains(name)
    }

    struct Manifest: Codable { var files: [String] }

    func url(_ name: String) -> URL { URL(fileURLWithPath: path).appendingPathComponent(name) }

    /// Whether an earlier run of this program wrote here.
    public var holdsRun: Bool {
        FileManager.default.fileExists(atPath: url(Self.manifestName).path) || !Checkpoint.list(in: path).isEmpty
    }

    /// Records `names` as this program's before they are written, so that a crash in between leaves
    /// a name that is ours rather than a file nobody owns.
    public func claim(_ names: [String]) throws {
        let added = owned.union(names)
        guard added != owned else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(Manifest(files: added.sorted())), to: url(Self.manifestName).path)
        owned = added
    }

    /// Top-level entries that neither this program's manifest, its lock and temporaries nor a
    /// complete checkpoint account for: the user's.
    public func foreignEntries() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        let checkpoints = Set(Checkpoint.list(in: path).map { URL(fileURLWithPath: $0.path).lastPathComponent })
        return names.filter { name in
            ![Self.manifestName, Self.lockName].contains(name) && !owned.contains(name) && !checkpoints.contains(name)
                && Temporary(name: name) == nil
        }.sorted()
    }

    /// What `--overwrite-output-dir` removes: the owned files that exist and every complete checkpoint.
    public func removableEntries(keeping kept: Set<String>) -> [String] {
        let fileManager = FileManager.default
        let files = owned.subtracting(kept).filter { fileManager.fileExists(atPath: url($0).path) }.map { url($0).path }
        return files.sorted() + Checkpoint.list(in: path).map(\.path)
    }

    public func remove(_ paths: [String]) throws {
        for path in paths {
            do { try FileManager.default.removeItem(atPath: path) } catch {
                throw TrainingError.io(path: path, problem: "cannot be removed: \(Self.reason(error))")
            }
        }
    }

    /// A temporary this program names `.NAME.tmp-PID` (a file or checkpoint being written) or
    /// `.NAME.old-PID` (a checkpoint moved aside while its replacement is renamed into place).
    struct Temporary: Equatable {
        let target: String
        let movedAside: Bool
        let pid: pid_t

        init?(name: String) {
            guard name.hasPrefix("."), let dash = name.lastIndex(of: "-"), let pid = pid_t(name[name.index(after: dash)...]), pid > 0 else { return nil }
            let stem = name[name.index(after: name.startIndex)..<dash]
            if stem.hasSuffix(".tmp") { movedAside = false } else if stem.hasSuffix(".old") { movedAside = true } else { return nil }
            target = String(stem.dropLast(4))
            guard !target.isEmpty else { return nil }
            self.pid = pid
        }

        /// Gone, or this very process (an earlier one that had the same pid, as in a fresh container).
        var processIsGone: Bool { pid == getpid() || (kill(pid, 0) != 0 && errno == ESRCH) }
    }

    /// Removes the temporaries whose process is gone from `directories`, and puts back a checkpoint
    /// that a crash left moved aside with nothing in its place. Returns what it did, for the log.
    public static func removeStaleTemporaries(in directories: [String]) -> [String] {
        let fileManager = FileManager.default
        var done: [String] = []
        for directory in directories {
            for name in ((try? fileManager.contentsOfDirectory(atPath: directory)) ?? []).sorted() {
                guard let temporary = Temporary(name: name), temporary.processIsGone else { continue }
                let path = URL(fileURLWithPath: directory).appendingPathComponent(name).path
                let target = URL(fileURLWithPath: directory).appendingPathComponent(temporary.target).path
                if temporary.movedAside && Checkpoint.isComplete(path) && !fileManager.fileExists(atPath: target),
                   (try? fileManager.moveItem(atPath: path, toPath: target)) != nil {
                    done.append("put back \(target), which an interrupted checkpoint write of process \(temporary.pid) had moved aside")
                } else if (try? fileManager.removeItem(atPath: path)) != nil {
                    done.append("removed \(path), a temporary left by process \(temporary.pid), which is gone")
                }
            }
        }
        return done
    }

    /// `mkdir -p`, naming the component that is in the way when it fails.
    static func createDirectory(_ path: String) throws {
        var isDirectory: ObjCBool = false
        var prefix = URL(fileURLWithPath: path)
        while !FileManager.default.fileExists(atPath: prefix.path, isDirectory: &isDirectory) && prefix.path != "/" {
            prefix.deleteLastPathComponent()
        }
        guard isDirectory.boolValue else { throw TrainingError.refused("\(prefix.path): is a file, not a directory (--output-dir must be a directory)") }
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw TrainingError.io(path: path, problem: "cannot create the output directory: \(reason(error))")
        }
    }

    /// The system's reason for a Foundation file error, without Foundation's domain and codes.
    static func reason(_ error: Error) -> String {
        let nsError = error as NSError
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if nsError.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(nsError.code))) }
        return nsError.localizedDescription
    }
}

extension RunDirectory {
    /// The files a run writes at the top of its output directory besides the final model's.
    public static let logFileNames = [MetricsLog.fileName, LossChart.fileName]
    /// The token cache's folder when `--cache-dir` is not given; kept by `--overwrite-output-dir`,
    /// since its files are keyed by what they hold.
    public static let defaultCacheName = ".cache"

    /// Locks and checks `settings.outputDir` the way `run_clm.py` does, but without ever removing
    /// what this program did not write: returns the directory and the checkpoint to resume from.
    /// `finalFileNames` are the names the final model is saved under.
    public static func start(_ settings: TrainingArguments, finalFileNames: [String], log: (String) -> Void) throws -> (RunDirectory, resumeFrom: String?) {
        let directory = try RunDirectory(path: settings.outputDir)
        do {
            return try directory.start(settings, finalFileNames: finalFileNames, log: log)
        } catch let error as TrainingError {
            if case .refused = error, directory.madeLockFile { unlink(directory.url(lockName).path) }
            throw error
        }
    }

    private func start(_ settings: TrainingArguments, finalFileNames: [String], log: (String) -> Void) throws -> (RunDirectory, resumeFrom: String?) {
        let directory = self
        let path = directory.path
        let cacheDir = settings.cacheDir ?? directory.url(Self.defaultCacheName).path
        for line in Self.removeStaleTemporaries(in: [path, cacheDir]) { log(line) }
        try directory.adoptRunWithoutManifest(ownNames: Self.logFileNames + finalFileNames + [Self.defaultCacheName], log: log)
        let foreign = directory.foreignEntries()
        if let checkpoint = foreign.first(where: { $0.hasPrefix(Checkpoint.prefix) && Int($0.dropFirst(Checkpoint.prefix.count)) != nil }) {
            throw TrainingError.refused("\(directory.url(checkpoint).path): not a checkpoint this program wrote (no \(Checkpoint.marker)), and a run would replace it; move it out of \(path)")
        }
        let collisions = foreign.filter { (Self.logFileNames + finalFileNames).contains($0) }
        func refuseCollisions() throws {
            guard let name = collisions.first else { return }
            throw TrainingError.refused("\(directory.url(name).path): not written by gpt2-ddp, and this run would overwrite it; move it away or pick another --output-dir")
        }

        let latest = Checkpoint.list(in: path).last?.path
        var resume: String?
        switch settings.resumeFromCheckpoint {
        case "latest"?:
            guard let latest else { throw TrainingError.refused("\(path): no complete checkpoint to resume from (--resume-from-checkpoint auto starts afresh when there is none)") }
            resume = latest
        case "auto"?: resume = latest
        case let checkpoint?:
            guard Checkpoint.isComplete(checkpoint) else { throw TrainingError.refused("\(checkpoint): not a complete checkpoint (no \(Checkpoint.marker))") }
            resume = checkpoint
        case nil: break
        }
        let keep: Set<String> = [Self.defaultCacheName]
        if let resume {
            try refuseCollisions()
            log("continuing in \(path) from \(resume)")
        } else {
            let earlier = directory.removableEntries(keeping: keep)
            if !foreign.isEmpty && !settings.overwriteOutputDir {
                throw TrainingError.refused("\(path): not empty and not a gpt2-ddp run (it holds \(foreign.prefix(3).joined(separator: ", "))\(foreign.count > 3 ? ", ..." : "")); pick an empty --output-dir, or give --overwrite-output-dir, which removes only what gpt2-ddp wrote")
            }
            if !earlier.isEmpty && !settings.overwriteOutputDir && settings.resumeFromCheckpoint != "auto" {
                throw TrainingError.refused("\(path): holds an earlier run; use --resume-from-checkpoint auto to continue it or --overwrite-output-dir to start afresh")
            }
            try refuseCollisions()
            try Self.refuseRemovingInputs(of: settings, in: earlier)
            try directory.remove(earlier)
            if !earlier.isEmpty { log("removed the earlier run's \(earlier.count) checkpoints and files from \(path) (\(foreign.count) entries not written by gpt2-ddp were kept)") }
        }
        try directory.claim(Self.logFileNames + (settings.cacheDir == nil ? [Self.defaultCacheName] : []))
        let metrics = MetricsLog(directory: path)
        if let cut = try metrics.cutTornLastLine() { log(cut) }
        if let resume {
            let step = try Checkpoint.readState(resume).state.globalStep
            if let dropped = try metrics.keepRecords(throughStep: step) { log(dropped) }
        }
        return (directory, resume)
    }

    /// A run of this program from before the manifest (complete checkpoints and a metrics.jsonl):
    /// the names such a run wrote are taken as its own.
    func adoptRunWithoutManifest(ownNames: [String], log: (String) -> Void) throws {
        let fileManager = FileManager.default
        guard !fileManager.fileExists(atPath: url(Self.manifestName).path), !Checkpoint.list(in: path).isEmpty,
              fileManager.fileExists(atPath: url(MetricsLog.fileName).path) else { return }
        let adopted = ownNames.filter { fileManager.fileExists(atPath: url($0).path) }
        try claim(adopted)
        log("\(path): a gpt2-ddp run from before \(Self.manifestName); took \(adopted.joined(separator: ", ")) as its files")
    }

    /// A run never deletes what it reads from: refuses when an input lies in what is to be removed.
    static func refuseRemovingInputs(of settings: TrainingArguments, in removed: [String]) throws {
        let inputs: [(String, String?)] = [("--model-name-or-path", settings.modelNameOrPath), ("--tokenizer", settings.tokenizer),
                                           ("--train-file", settings.trainFile), ("--validation-file", settings.validationFile),
                                           ("--model-config", settings.modelConfig)]
        for (flag, input) in inputs {
            guard let input, FileManager.default.fileExists(atPath: input) else { continue }
            let inputPath = canonicalPath(input)
            if let removedPath = removed.first(where: { inputPath == canonicalPath($0) || inputPath.hasPrefix(canonicalPath($0) + "/") }) {
                throw TrainingError.refused("\(flag) \(input) is part of the earlier run in \(settings.outputDir) (\(removedPath)), which --overwrite-output-dir would remove; copy it elsewhere first, or resume with --resume-from-checkpoint")
            }
        }
    }
}

/// This machine's name, as a lock holder and an event file name give it.
func hostName() -> String {
    var host = [CChar](repeating: 0, count: 256)
    gethostname(&host, host.count - 1)
    return String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// The absolute path with symbolic links resolved as far as it exists, so that two spellings of a
/// path (relative, through a link, not yet created below some folder) compare equal.
func canonicalPath(_ path: String) -> String {
    var existing = URL(fileURLWithPath: path).standardizedFileURL
    var rest: [String] = []
    while !FileManager.default.fileExists(atPath: existing.path) && existing.path != "/" {
        rest.insert(existing.lastPathComponent, at: 0)
        existing.deleteLastPathComponent()
    }
    return rest.reduce(existing.resolvingSymlinksInPath()) { $0.appendingPathComponent($1) }.path
}
