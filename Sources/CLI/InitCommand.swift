import Foundation
import GPT2

/// Writes a randomly initialised model directory: the start of training from scratch, and the
/// model that benchmarks and tests use when no pretrained weights are at hand.
enum InitCommand: Command {
    static let spec = CommandSpec(
        name: "init",
        summary: "Write a model directory with GPT-2's from-scratch initialisation (config.json, model.safetensors).",
        flags: [
            modelConfigFlag,
            .option("--output-dir", "DIR", "directory to write: a new or empty one (created if needed)"),
            .option("--seed", "N", "random seed", default: "42"),
            .option("--vocab-size", "N", "override the preset's vocabulary size", maximum: GPT2Config.maxVocabularySize),
            configOverridesFlag,
        ])

    /// run_clm.py's `--config_overrides`, shared by every command that builds or loads a model.
    static let configOverridesFlag = Flag.option(
        "--config-overrides", "KEY=VALUE,...", "change config fields, typed as the config's, e.g. \"resid_pdrop=0.0,attn_pdrop=0.0\"; a saved model keeps the result")

    static let modelConfigFlag = Flag.option(
        "--model-config", "NAME|FILE", "a preset (\(GPT2Config.presets.keys.sorted().joined(separator: ", "))) or a config.json", default: "tiny")

    /// `--model-config` (a preset or a config.json) with `--vocab-size` and `--config-overrides` applied.
    static func resolveConfig(_ arguments: ParsedArguments) throws -> GPT2Config {
        let source = try arguments.required("--model-config")
        var config = try GPT2Config.resolve(source)
        if let vocabularySize = try arguments.int("--vocab-size") { config.vocabSize = vocabularySize }
        try config.validate(source: source)
        if let overrides = arguments.string("--config-overrides") { config = try config.applyingOverrides(overrides) }
        return config
    }

    static func run(_ arguments: ParsedArguments, console: Console) throws {
        let output = try arguments.required("--output-dir")
        try refuseToOverwrite(output)
        guard let seed = UInt64(try arguments.required("--seed")) else {
            throw CLIError.usage(command: spec.name, message: "--seed expects a non-negative integer")
        }
        let model = try GPT2Model.randomlyInitialized(config: try resolveConfig(arguments), seed: seed)
        try model.save(directory: output)
        console.print("wrote \(output): \(model.parameterCount) parameters, seed \(seed)")
    }

    /// A new model goes only where it replaces nothing: an --output-dir that is a file or holds
    /// anything (a trained model, say) is refused.
    static func refuseToOverwrite(_ output: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: output, isDirectory: &isDirectory) else { return }
        guard isDirectory.boolValue else { throw CLIError.usage(command: spec.name, message: "\(output): --output-dir is a file, not a directory") }
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: output) else {
            throw CLIError.failure("\(output): cannot read the --output-dir")
        }
        guard entries.isEmpty else {
            throw CLIError.usage(command: spec.name, message: "\(output): --output-dir is not empty (it holds \(entries.sorted()[0])); give a new or empty directory")
        }
    }
}
