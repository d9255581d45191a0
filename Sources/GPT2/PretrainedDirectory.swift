import Foundation
import Kernels
import SafeTensors

/// What loading a checkpoint found besides the parameters themselves.
public struct LoadReport: Sendable, Equatable {
    /// Tensors Hugging Face also skips: the tied `lm_head.weight` and old attention-mask buffers.
    public var ignored: [String] = []
    /// Tensors that are not part of GPT2LMHeadModel (reported, not loaded).
    public var unexpected: [String] = []
    /// The safetensors files the weights came from.
    public var weightFiles: [String] = []
}

extension GPT2Model {
    public static let configFileName = "config.json"
    public static let weightsFileName = "model.safetensors"
    public static let weightsIndexFileName = "model.safetensors.index.json"

    /// Loads a directory as `save_pretrained` writes it: `config.json` and `model.safetensors` (or
    /// the sharded form with `model.safetensors.index.json`), names with or without `transformer.`.
    public static func load(directory: String) throws -> (model: GPT2Model, report: LoadReport) {
        let config = try loadConfig(directory: directory)
        let root = URL(fileURLWithPath: directory)
        let files = try weightFiles(in: root)
        let layout = ParameterLayout(config: config)
        let parameters = FloatBuffer(count: layout.totalCount)
        var report = LoadReport(weightFiles: files.map(\.path))
        var loaded = Set<String>()
        for file in files {
            for tensor in file.tensors {
                let name = tensor.name.hasPrefix(ParameterLayout.prefix) ? String(tensor.name.dropFirst(ParameterLayout.prefix.count)) : tensor.name
                guard let target = layout.tensor(named: name) else {
                    if isIgnoredBuffer(name) { report.ignored.append(tensor.name) } else { report.unexpected.append(tensor.name) }
                    continue
                }
                guard !loaded.contains(target.name) else {
                    throw ModelError.incompatibleWeights(path: file.path, problem: "tensor '\(target.name)' appears twice")
                }
                try file.read(tensor.name, shape: target.shape,
                              into: UnsafeMutableBufferPointer(start: parameters.pointer + target.offset, count: target.count))
                loaded.insert(target.name)
            }
        }
        let missing = layout.tensors.map(\.name).filter { !loaded.contains($0) }
        if !missing.isEmpty {
            let shown = missing.prefix(3).joined(separator: ", ") + (missing.count > 3 ? " and \(missing.count - 3) more" : "")
            throw ModelError.incompatibleWeights(path: files.map(\.path).joined(separator: ", "), problem: "missing tensors: \(shown)")
        }
        return (GPT2Model(config: config, parameters: parameters), report)
    }

    /// The config of a model directory, checked as `load` checks it before reading any weight.
    public static func loadConfig(directory: String) throws -> GPT2Config {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            throw ModelError.missingFile(path: directory)
        }
        guard isDirectory.boolValue else {
            throw ModelError.incompatibleWeights(path: directory, problem: "is a file; expected a model directory with config.json and model.safetensors")
        }
        return try GPT2Config.load(path: configPath(directory: directory))
    }

    /// Where a model directory keeps its config.
    public static func configPath(directory: String) -> String {
        URL(fileURLWithPath: directory).appendingPathComponent(configFileName).path
    }

    private static func isIgnoredBuffer(_ name: String) -> Bool {
        if name == "lm_head.weight" { return true }
        let parts = name.split(separator: ".")
        return parts.count == 4 && parts[0] == "h" && Int(parts[1]) != nil && parts[2] == "attn"
            && (parts[3] == "bias" || parts[3] == "masked_bias")
    }

    private static func weightFiles(in root: URL) throws -> [SafeTensorsFile] {
        let single = root.appendingPathComponent(weightsFileName).path
        if FileManager.default.fileExists(atPath: single) { return [try SafeTensorsFile(path: single)] }
        let indexPath = root.appendingPathComponent(weightsIndexFileName).path
        guard let indexData = FileManager.default.contents(atPath: indexPath) else {
            let hasPickle = FileManager.default.fileExists(atPath: root.appendingPathComponent("pytorch_model.bin").path)
            throw ModelError.incompatibleWeights(path: root.path, problem: hasPickle
                ? "has only pytorch_model.bin; save it with safe_serialization=True to get model.safetensors"
                : "has no \(weightsFileName)")
        }
        struct Index: Decodable { let weight_map: [String: String] }
        guard let index = try? JSONDecoder().decode(Index.self, from: indexData) else {
            throw ModelError.incompatibleWeights(path: indexPath, problem: "not a safetensors index (no weight_map)")
        }
        return try Set(index.weight_map.values).sorted().map { shard in
            guard !shard.contains("/") else { throw ModelError.incompatibleWeights(path: indexPath, problem: "shard '\(shard)' is outside the directory") }
            return try SafeTensorsFile(path: root.appendingPathComponent(shard).path)
        }
    }

    /// Writes `config.json` and `model.safetensors` the way `save_pretrained` does (F32, names with
    /// the `transformer.` prefix, the tied head left out), each file replaced atomically.
    public func save(directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw SafeTensorsError.cannotWrite(path: directory, reason: "cannot create the directory")
        }
        let root = URL(fileURLWithPath: directory)
        try saveWeights(to: root.appendingPathComponent(Self.weightsFileName).path, buffers: [("", parameters)])
        try AtomicFile.write(try config.jsonData(), to: root.appendingPathComponent(Self.configFileName).path)
    }

    /// Writes flat buffers laid out like the parameters (the parameters themselves, gradients,
    /// optimiser moments) under Hugging Face's names and shapes, each name behind its prefix.
    /// `willWriteBuffer(b)` runs just before buffer b's first value is read: several names can
    /// share one buffer that is filled in turn.
    public func saveWeights(to path: String, buffers: [(namePrefix: String, buffer: FloatBuffer)],
                            extra: [FloatTensor] = [], metadata: [String: String] = ["format": "pt"],
                            willWriteBuffer: (Int) throws -> Void = { _ in }) throws {
        let tensors = buffers.flatMap { namePrefix, buffer in
            precondition(buffer.count == layout.totalCount)
            return layout.tensors.map {
                FloatTensor(name: namePrefix + $0.name, shape: $0.shape,
                            values: UnsafeBufferPointer(start: buffer.pointer + $0.offset, count: $0.count))
            }
        }
        let perBuffer = layout.tensors.count
        try SafeTensorsWriter.write(extra + tensors, metadata: metadata, to: path) { index in
            let position = index - extra.count
            if position >= 0 && position % perBuffer == 0 { try willWriteBuffer(position / perBuffer) }
        }
    }

    /// Reads a buffer laid out like the parameters from `file`, every tensor under `namePrefix`,
    /// with its shape checked.
    public func readWeights(from file: SafeTensorsFile, namePrefix: String, into buffer: FloatBuffer) throws {
        precondition(buffer.count == layout.totalCount)
        for tensor in layout.tensors {
            try file.read(namePrefix + tensor.name, shape: tensor.shape,
                          into: UnsafeMutableBufferPointer(start: buffer.pointer + tensor.offset, count: tensor.count))
        }
    }
}
