import Foundation
import GPT2
import SafeTensors

#if canImport(Glibc)
import Glibc
#endif

/// Where a run is: enough, with the weights and optimiser moments, to continue exactly.
public struct TrainerState: Codable, Sendable, Equatable {
    public var globalStep = 0
    public var epoch = 0.0
    public var totalSteps = 0
    /// The data order is a function of the seed and the global batch size; a resume with another
    /// global batch size continues from the same example count instead of the same step.
    public var globalBatchSize = 0
    public var worldSize = 1
    public var seed: UInt64 = 0
    public var bestEvalLoss: Double?
    public var bestCheckpoint: String?
    /// Losses of the steps since the last log line, so a resumed run logs the same windows.
    public var windowLossSum = 0.0
    public var windowSteps = 0
    public var trainLossSum = 0.0
    public var tokenizerFingerprint = ""
    public var logHistory: [MetricsRecord] = []

    public init() {}

    /// The first field that no run could have written, as a message naming it; nil when all are sound.
    func invalidField() -> String? {
        let finite: [(String, Double?)] = [("epoch", epoch), ("window_loss_sum", windowLossSum), ("train_loss_sum", trainLossSum), ("best_eval_loss", bestEvalLoss)]
        if let (name, value) = finite.first(where: { $0.1.map { !$0.isFinite } ?? false }) { return "field '\(name)' is \(value!), not a finite number" }
        let counts: [(String, Int, ClosedRange<Int>)] = [
            ("global_step", globalStep, 0...Int.max), ("max_steps", totalSteps, 1...Int.max), ("global_batch_size", globalBatchSize, 1...Int.max),
            ("world_size", worldSize, 1...Int.max), ("window_steps", windowSteps, 0...max(globalStep, 0)),
        ]
        if let (name, value, range) = counts.first(where: { !$0.2.contains($0.1) }) {
            return "field '\(name)' is \(value); it must be " + (range.upperBound == Int.max ? "\(range.lowerBound) or more" : "between \(range.lowerBound) and \(range.upperBound)")
        }
        if epoch < 0 { return "field 'epoch' is \(epoch), below 0" }
        return nil
    }

    enum CodingKeys: String, CodingKey {
        case globalStep = "global_step", epoch, totalSteps = "max_steps", globalBatchSize = "global_batch_size"
        case worldSize = "world_size", seed, bestEvalLoss = "best_eval_loss", bestCheckpoint = "best_model_checkpoint"
        case windowLossSum = "window_loss_sum", windowSteps = "window_steps", trainLossSum = "train_loss_sum"
        case tokenizerFingerprint = "tokenizer_fingerprint", logHistory = "log_history"
    }
}

/// `OUTPUT/checkpoint-STEP/`: the model in Hugging Face's layout, AdamW's moments, the trainer
/// state and the resolved arguments. It is written into a hidden temporary directory, every file
/// flushed, a completion marker written last, and only then renamed into place, so a crash never
/// leaves a checkpoint that looks complete.
public enum Checkpoint {
    public static let marker = "checkpoint.complete"
    public static let optimizerFileName = "optimizer.safetensors"
    public static let stateFileName = "trainer_state.json"
    public static let argumentsFileName = "training_args.json"
    public static let prefix = "checkpoint-"

    public static func directory(in outputDir: String, step: Int) -> String {
        URL(fileURLWithPath: outputDir).appendingPathComponent("\(prefix)\(step)").path
    }

    public static func write(to path: String, model: GPT2Model, optimizer: AdamW, state: TrainerState,
                             arguments: TrainingArguments, extraFiles: (String) throws -> Void) throws {
        let url = URL(fileURLWithPath: path)
        let parent = url.deletingLastPathComponent()
        let temporary = parent.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        let fileManager = FileManager.default
        try? fileManager.removeItem(at: temporary)
        do {
            try fileManager.createDirectory(at: temporary, withIntermediateDirectories: true)
            try model.save(directory: temporary.path)
            try model.saveWeights(to: temporary.appendingPathComponent(optimizerFileName).path,
                                  buffers: [("exp_avg.", optimizer.firstMoment), ("exp_avg_sq.", optimizer.secondMoment)],
                                  metadata: ["step": String(optimizer.stepCount)])
            try extraFiles(temporary.path)
            try AtomicFile.write(try json(state), to: temporary.appendingPathComponent(stateFileName).path)
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

    /// Deletes the oldest complete checkpoints beyond `limit`, never the best one, and nothing
    /// that this program did not write (directories without the marker stay).
    public static func prune(in outputDir: String, keep limit: Int, best: String?) throws {
        let checkpoints = list(in: outputDir)
        var excess = checkpoints.count - limit
        for checkpoint in checkpoints where excess > 0 && checkpoint.path != best {
            try FileManager.default.removeItem(atPath: checkpoint.path)
            excess -= 1
        }
    }

    public static func readState(_ path: String) throws -> (state: TrainerState, arguments: TrainingArguments) {
        guard isComplete(path) else { throw TrainingError.cannotResume(path: path, problem: "not a complete checkpoint (no \(marker))") }
        func decode<T: Decodable>(_ name: String, as type: T.Type) throws -> T {
            let file = URL(fileURLWithPath: path).appendingPathComponent(name).path
            guard let data = FileManager.default.contents(atPath: file) else { throw TrainingError.cannotResume(path: file, problem: "missing or unreadable") }
            do { return try JSONDecoder().decode(type, from: data) } catch let error as DecodingError {
                throw TrainingError.cannotResume(path: file, problem: describe(error))
            }
        }
        let state = try decode(stateFileName, as: TrainerState.self)
        if let problem = state.invalidField() {
            throw TrainingError.cannotResume(path: URL(fileURLWithPath: path).appendingPathComponent(stateFileName).path, problem: problem)
        }
        return (state, try decode(argumentsFileName, as: TrainingArguments.self))
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

    /// Loads weights and optimiser moments into `model` and `optimizer`, after checking that the
    /// checkpoint's model config equals the run's.
    public static func restore(from path: String, model: GPT2Model, optimizer: AdamW) throws {
        let configPath = URL(fileURLWithPath: path).appendingPathComponent(GPT2Model.configFileName).path
        let config = try GPT2Config.load(path: configPath)
        let differences = model.config.differences(from: config)
        guard differences.isEmpty else {
            throw TrainingError.cannotResume(path: path, problem: "its model config differs from this run's: \(differences.joined(separator: ", "))")
        }
        let (saved, _) = try GPT2Model.load(directory: path)
        model.parameters.copy(from: saved.parameters)
        let optimizerFile = try SafeTensorsFile(path: URL(fileURLWithPath: path).appendingPathComponent(optimizerFileName).path)
        try model.readWeights(from: optimizerFile, namePrefix: "exp_avg.", into: optimizer.firstMoment)
        try model.readWeights(from: optimizerFile, namePrefix: "exp_avg_sq.", into: optimizer.secondMoment)
        guard let step = optimizerFile.metadata["step"].flatMap(Int.init), step >= 0 else {
            throw TrainingError.cannotResume(path: optimizerFile.path, problem: "its metadata has no step, or a negative one")
        }
        optimizer.stepCount = step
    }
}
