import Foundation
import GPT2
import Kernels
import SafeTensors

/// Describes a model directory (config, parameter count, tensors) or a single safetensors file.
enum InfoCommand: Command {
    static let spec = CommandSpec(
        name: "info",
        summary: "Print a model directory's config, parameter count and tensors (or a safetensors file's tensors), or the CPU's kernel paths.",
        positionals: [("PATH", "model directory, or a .safetensors file")],
        flags: [.toggle("--cpu", "instead: the CPU's features and caches, and the kernel paths chosen (\(CPU.matmulEnvironmentVariable)=PATH forces one)")])

    static func run(_ arguments: ParsedArguments, console: Console) throws {
        if arguments.isSet("--cpu") { return describeCPU(console: console) }
        let path = try arguments.positional(0, "PATH")
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw CLIError.failure("\(path): no such file or directory") }
        if !isDirectory.boolValue {
            try describe(file: try SafeTensorsFile(path: path), console: console)
            return
        }
        let (model, report) = try GPT2Model.load(directory: path)
        let config = model.config
        console.print("model: \(path)")
        console.print("config: n_layer=\(config.nLayer) n_head=\(config.nHead) n_embd=\(config.nEmbd) n_inner=\(config.innerSize) "
            + "n_positions=\(config.nPositions) vocab_size=\(config.vocabSize) activation=\(config.activationFunction) "
            + "layer_norm_epsilon=\(config.layerNormEpsilon) bos_token_id=\(describe(config.bosTokenID)) "
            + "eos_token_id=\(describe(config.eosTokenID)) pad_token_id=\(describe(config.padTokenID))")
        console.print("parameters: \(model.parameterCount) (\(String(format: "%.2f", Double(model.parameterCount) / 1e6))M, tied lm_head)")
        for file in report.weightFiles { try describe(file: try SafeTensorsFile(path: file), console: console) }
        if !report.ignored.isEmpty { console.print("ignored (as transformers does): \(report.ignored.joined(separator: ", "))") }
        warnUnexpected(report, console: console)
    }

    private static func describeCPU(console: Console) {
        let cpu = CPU.current
        console.print("cpu: \(cpu.modelName ?? "unknown")")
        console.print("features: \(cpu.featureNames.joined(separator: ", "))")
        let size = { (bytes: Int?) in bytes.map { "\($0 >> 10) KB" } ?? "unknown" }
        console.print("caches per core: L1d \(size(cpu.l1DataBytes)), L2 \(size(cpu.l2Bytes))")
        for path in CPU.matmulPaths() {
            console.print("matmul path \(path.path): tile \(path.tile), \(path.block), \(String(format: "%.1f", path.gflops)) GFLOP/s in cache")
        }
        console.print("matmul: \(CPU.matmulPath)")
        console.print("bf16 matmul (--bf16): \(CPU.bfloat16MatmulPath ?? "none: this CPU lacks AVX512-BF16")")
    }

    static func warnUnexpected(_ report: LoadReport, console: Console) {
        guard !report.unexpected.isEmpty else { return }
        console.warn("warning: tensors that are not part of GPT2LMHeadModel were not loaded: \(report.unexpected.joined(separator: ", "))")
    }

    private static func describe(_ id: Int?) -> String { id.map(String.init) ?? "none" }

    private static func describe(file: SafeTensorsFile, console: Console) throws {
        console.print("file: \(file.path) (\(file.tensors.count) tensors)")
        for (key, value) in file.metadata.sorted(by: { $0.key < $1.key }) { console.print("  metadata \(key) = \(value)") }
        for tensor in file.tensors {
            console.print("  \(tensor.name) \(tensor.dtype.rawValue) \(tensor.shape)")
        }
    }
}
