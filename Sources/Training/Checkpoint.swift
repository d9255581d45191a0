import Foundation
import GPT2
import Kernels
import SafeTensors

#if canImport(Glibc)
import Glibc
#endif

/// `OUTPUT/checkpoint-STEP/`: the model in Hugging Face's layout, AdamW's moments, the trainer
/// state and the resolved arguments. It is written into a hidden temporary directory, every file
/// flushed, a completion marker written last, and only then renamed into place, so a crash never
/// leaves a checkpoint that looks complete.
public enum Checkpoint {
    public static let marker = "checkpoint.complete"
    public static let optimizerFileName = "optimizer.safetensors"
    /// `Trainer`'s own file, in its layout; what only this program needs is in `runStateFileName`.
    public static let stateFileName = "trainer_state.json"
    public static let runStateFileName = "gpt2_ddp_state.json"
    public static let argumentsFileName = "training_args.json"
    public static let prefix = "checkpoint-"
    /// The moments' names in the optimizer file, as torch's state_dict calls them.
    public static let momentPrefixes = ["exp_avg.", "exp_avg_sq."]

    public static func directory(in outputDir: String, step: Int) -> String {
        URL(fileURLWithPath: outputDir).appendingPathComponent("\(prefix)\(step)").path
    }

    /// AdamW's two moments as the checkpoint writes them, whole: the optimizer's own buffers, or
    /// under ZeRO-1 one buffer that `fill(i)` fills with moment i (gathered from every rank's
    /// shard) just before it is written, so that no rank ever holds both whole.
    public struct Moments {
        public let buffers: [FloatBuffer]
        public let fill: (Int) throws -> Void
        public init(buffers: [FloatBuffer], fill: @escaping (Int) throws -> Void = { _ in }) {
            self.buffers = buffers
            self.fill = fill
        }
    }

    public static func write(to path: String, model: GPT2Model, optimizer: AdamW, moments: Moments? = nil, state: TrainerState,
                             arguments: TrainingArguments, extraFiles: (String) throws -> Void) throws {
        let moments = moments ?? Moments(buffers: optimizer.moments)
        let url = URL(fileURLWithPath: path)
        let parent = url.deletingLastPathComponent()
        let temporary = parent.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        let fileManager = FileManager.default
        try? fileManager.removeItem(at: temporary)
        do {
            try fileManager.createDirectory(at: temporary, withIntermediateDirectories: true)
            try model.save(directory: temporary.path)
            try model.saveWeights(to: temporary.appendingPathComponent(optimizerFileName).path,
                                  buffers: zip(momentPrefixes, moments.buffers).map { ($0, $1) },
                                  metadata: ["step": String(optimizer.stepCount)], willWriteBuffer: moments.fill)
            try extraFiles(temporary.path)
            try AtomicFile.write(try json(TrainerStateFile(state, arguments: arguments)), to: temporary.appendingPathComponent(stateFileName).path)
            try AtomicFile.write(try json(RunStateFile(state)), to: temporary.appendingPathComponent(runStateFileName).path)
            try AtomicFile.write(try json(arguments), to: temporary.appendingPathComponent(argumentsFileName).path)
            try AtomicFile.write(Data("step \(state.globalStep)\n".utf8), to: temporary.appendingPathComponent(marker).path)
            if fileManager.fileExists(atPath: path) {
                // Replacing a checkpoint of the same step (a resumed run saving again): move the
                // old one aside first so that one complete copy exists at every moment.
                let old = parent.appendingPathComponent(".\(url.lastPathComponent).old-\(getpid())")
                try fileManager.moveItem(atPath: path, toPath: old.path)
                try fileManager.moveItem(at: temporary, to: url)
                try fileManager.removeItem(at: old)
            } else {
                try fileManager.moveItem(at: temporary, to: url)
            }
            syncDirectory(parent.path)
        } catch {
            try? fileManager.removeItem(at: temporary)
            throw TrainingError.io(path: path, problem: "checkpoint not written: \(error)")
        }
    }

    private static func syncDirectory(_ path: String) {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }

    static func json<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }

    public static func isComplete(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: URL(fileURLWithPath: path).appendingPathComponent(marker).path)
    }

    /// Complete checkpoints in `outputDir`, oldest first (by step).
    public static func list(in outputDir: String) -> [(step: Int, path: String)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: outputDir)) ?? []
        return names.compactMap { name -> (Int, String)? in
            guard name.hasPrefix(prefix), let step = Int(name.dropFirst(prefix.count)) else { return nil }
            let path = URL(fileURLWithPath: outputDir).appendingPathComponent(name).path
            return isComplete(path) ? (step, path) : nil
        }.sorted { $0.0 < $1.0 }
    }

    /// Deletes the oldest complete checkpoints beyond `limit`, as `Trainer._rotate_checkpoints` does:
    /// the best one counts among the kept and is never deleted, nor is the newest (a limit of 1 with
    /// a best that is not the newest keeps both). Directories without the marker are never touched.
    public static func prune(in outputDir: String, keep limit: Int, best: String?) throws {
        var checkpoints = list(in: outputDir).map(\.path)
        if let best, let index = checkpoints.firstIndex(of: best), index < checkpoints.count - 1 {
            checkpoints.remove(at: index)
            checkpoints.insert(best, at: checkpoints.count - 1)  // second to last: kept beside the newest
        }
        let kept = limit == 1 && best != nil && checkpoints.last != best ? 2 : limit
        for path in checkpoints.dropLast(kept) {
            try FileManager.default.removeItem(atPath: path)
        }
    }

    public static func readState(_ path: String) throws -> (state: TrainerState, arguments: TrainingArguments) {
        guard isComplete(path) else { throw TrainingError.cannotResume(path: path, problem: "not a complete checkpoint (no \(marker))") }
        func read(_ name: String) throws -> (file: String, data: Data) {
            let file = URL(fileURLWithPath: path).appendingPathComponent(name).path
            guard let data = FileManager.default.contents(atPath: file) else { throw TrainingError.cannotResume(path: file, problem: "missing or unreadable") }
            return (file, data)
        }
        func decode<T: Decodable>(_ type: T.Type, _ file: String, _ data: Data) throws -> T {
            do { return try JSONDecoder().decode(type, from: data) } catch let error as DecodingError {
                throw TrainingError.cannotResume(path: file, problem: describe(error))
            }
        }
        let (stateFile, stateData) = try read(stateFileName), (runFile, runData) = try read(runStateFileName)
        let state = TrainerState(try decode(TrainerStateFile.self, stateFile, stateData), try decode(RunStateFile.self, runFile, runData))
        if let (name, problem) = state.invalidField() {
            throw TrainingError.cannotResume(path: TrainerState.trainerFields.contains(name) ? stateFile : runFile, problem: "field '\(name)' \(problem)")
        }
        // Settings added since the checkpoint was written take their defaults.
        let (argumentsFile, argumentsData) = try read(argumentsFileName)
        let saved = try decode([String: JSONValue].self, argumentsFile, argumentsData)
        let defaults = try JSONDecoder().decode([String: JSONValue].self, from: JSONEncoder().encode(TrainingArguments(outputDir: "", trainFile: "")))
        let arguments = try decode(TrainingArguments.self, argumentsFile, try JSONEncoder().encode(defaults.merging(saved) { $1 }))
        return (state, arguments)
    }

    /// What is wrong with a JSON file, in terms of its fields rather than the decoder's.
    static func describe(_ error: DecodingError) -> String {
        func field(_ path: [CodingKey]) -> String { path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".") }
        switch error {
        case let .keyNotFound(key, context): return "has no field '\(field(context.codingPath + [key]))'"
        case let .typeMismatch(type, context): return "field '\(field(context.codingPath))' is not \(type == String.self ? "a string" : "a number of the right kind")"
        case let .valueNotFound(_, context): return "field '\(field(context.codingPath))' is null"
        case let .dataCorrupted(context):
            return context.codingPath.isEmpty ? "is not valid JSON" : "field '\(field(context.codingPath))' has an invalid value"
        @unknown default: return "cannot be read"
        }
    }

    /// Loads the checkpoint's weights into `model`, after checking that its model config is the run's.
    public static func restoreWeights(from path: String, model: GPT2Model) throws {
        let configPath = URL(fileURLWithPath: path).appendingPathComponent(GPT2Model.configFileName).path
        let config = try GPT2Config.load(path: configPath)
        let differences = model.config.differences(from: config)
        guard differences.isEmpty else {
            throw TrainingError.cannotResume(path: path, problem: "its model config differs from this run's: \(differences.joined(separator: ", "))")
        }
        let (saved, _) = try GPT2Model.load(directory: path)
        model.parameters.copy(from: saved.parameters)
    }

    /// Loads weights, the optimiser's step and, when it holds them whole, its moments into `model`
    /// and `optimizer`, after checking that the checkpoint's model config equals the run's. Returns
    /// the optimizer file, whose moments a sharded optimizer takes from it in parts.
    @discardableResult
    public static func restore(from path: String, model: GPT2Model, optimizer: AdamW) throws -> SafeTensorsFile {
        try restoreWeights(from: path, model: model)
        let optimizerFile = try SafeTensorsFile(path: URL(fileURLWithPath: path).appendingPathComponent(optimizerFileName).path)
        guard let step = optimizerFile.metadata["step"].flatMap(Int.init), step >= 0 else {
            throw TrainingError.cannotResume(path: optimizerFile.path, problem: "its metadata has no step, or a negative one")
        }
        if optimizer.holdsEveryMoment {
            for (prefix, moment) in zip(momentPrefixes, optimizer.moments) {
                try model.readWeights(from: optimizerFile, namePrefix: prefix, into: moment)
            }
        }
        optimizer.stepCount = step
        return optimizerFile
    }
}
