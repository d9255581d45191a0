import Foundation
import GPT2
import Kernels
import Tokenizer

/// `gpt2-ddp generate`: new text from a model directory, as `model.generate()` makes it.
enum GenerateCommand: Command {
    static let spec = CommandSpec(
        name: "generate",
        summary: "Generate text from a model directory with a key/value cache (greedy or sampling), as generate() does: the defaults come "
            + "from the model's generation_config.json (from its config.json when it has none), then transformers' own; a flag overrides them.",
        flags: [
            .option("--model-name-or-path", "DIR", "model directory"),
            .option("--tokenizer", "DIR", "tokenizer directory (default: the model directory)"),
            .option("--prompt", "TEXT", "text to continue (default: the generation config's bos token alone)"),
            .option("--prompt-ids", "IDS", "the prompt as comma-separated token ids (no tokenizer needed)"),
            .option("--num-return-sequences", "N", "how many texts to generate (default: generation_config.json's num_return_sequences, else 1)",
                    maximum: CountLimit.batchSize),
            .option("--batch", "N", "sequences generated at once (default: all of them)", maximum: CountLimit.batchSize),
            .option("--max-new-tokens", "N", "new tokens at most (default: generation_config.json's max_new_tokens or max_length, else 20; "
                    + "either length flag replaces both)", maximum: CountLimit.tokens),
            .option("--max-length", "N", "prompt plus new tokens at most (--max-new-tokens wins if both are given)", maximum: CountLimit.tokens),
            .option("--min-new-tokens", "N", "suppress the end-of-sequence token until this many new tokens (default: generation_config.json's "
                    + "min_new_tokens or min_length, else 0; either flag replaces both)", maximum: CountLimit.tokens),
            .option("--min-length", "N", "suppress the end-of-sequence token until prompt plus new tokens reach this (--min-new-tokens wins if both are given)",
                    maximum: CountLimit.tokens),
            .toggle("--do-sample", "sample the next token (default: generation_config.json's do_sample, else greedy, as generate() does)"),
            .toggle("--greedy", "take the most likely token, whatever generation_config.json's do_sample says"),
            .option("--temperature", "T", "when sampling, divide the logits by T (default: generation_config.json's temperature, else 1.0)"),
            .option("--top-k", "K", "when sampling, keep the K most likely tokens, 0 for all (default: generation_config.json's top_k, else 50)",
                    maximum: GPT2Config.maxVocabularySize),
            .option("--top-p", "P", "when sampling, keep the most likely tokens that make up probability P (default: generation_config.json's top_p, else 1.0)"),
            .option("--repetition-penalty", "R", "penalise tokens already in the sequence (default: generation_config.json's repetition_penalty, else 1.0)"),
            .option("--no-repeat-ngram-size", "N", "never repeat an n-gram of this size, 0 for off (default: generation_config.json's no_repeat_ngram_size, else 0)",
                    maximum: CountLimit.tokens),
            .option("--seed", "N", "sampling seed", default: "42"),
            .toggle("--no-stop-at-eos", "keep generating past the end-of-sequence token"),
            .toggle("--json", "print one JSON object per sequence: the new ids (with the eos that ended it) and the text"),
            .option("--weights-dtype", "fp32|bf16", "hold the weights as fp32 or as bfloat16 (half the memory traffic; arithmetic stays fp32)",
                    default: "fp32"),
            ComputeThreads.flag,
        ])

    static func nonNegative(_ arguments: ParsedArguments, _ name: String) throws -> Int? {
        guard let value = try arguments.int(name) else { return nil }
        guard value >= 0 else { throw CLIError.usage(command: spec.name, message: "\(name) must not be negative") }
        return value
    }

    static func weightsDType(_ name: String, command: String) throws -> WeightsDType {
        guard let dtype = WeightsDType(rawValue: name) else {
            throw CLIError.usage(command: command, message: "--weights-dtype must be fp32 or bf16, not '\(name)'")
        }
        return dtype
    }

    static func run(_ arguments: ParsedArguments, console: Console) throws {
        try ComputeThreads.apply(arguments)
        let dtype = try weightsDType(try arguments.required("--weights-dtype"), command: spec.name)
        let directory = try arguments.required("--model-name-or-path")
        let (model, report) = try GPT2Model.load(directory: directory)
        InfoCommand.warnUnexpected(report, console: console)
        let defaults = try GenerationConfig.load(directory: directory, modelConfig: model.config)
        let tokenizerDirectory = arguments.string("--tokenizer") ?? directory
        let needsTokenizer = arguments.string("--prompt-ids") == nil || !arguments.isSet("--json")
        let tokenizer = needsTokenizer || FileManager.default.fileExists(atPath: tokenizerDirectory + "/vocab.json")
            ? try GPT2Tokenizer.load(directory: URL(fileURLWithPath: tokenizerDirectory)) : nil

        let prompt: [Int]
        if let ids = arguments.string("--prompt-ids") {
            guard arguments.string("--prompt") == nil else { throw CLIError.usage(command: spec.name, message: "give --prompt or --prompt-ids, not both") }
            let parsed = ids.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !parsed.isEmpty, parsed.allSatisfy({ $0 != nil }) else {
                throw CLIError.usage(command: spec.name, message: "--prompt-ids expects comma-separated integers, got '\(ids)'")
            }
            prompt = parsed.map { $0! }
        } else if let text = arguments.string("--prompt") {
            prompt = tokenizer!.encode(text)
        } else {
            // generate() without input ids starts from the generation config's bos_token_id.
            guard let bos = defaults.bosTokenID ?? tokenizer?.bosTokenID else {
                throw CLIError.failure("\(defaults.source ?? directory): no bos_token_id to start from; give --prompt")
            }
            prompt = [bos]
        }

        // The flags as generate()'s keyword arguments: each one given replaces the file's value.
        var requested = GenerationConfig()
        guard !(arguments.isSet("--do-sample") && arguments.isSet("--greedy")) else {
            throw CLIError.usage(command: spec.name, message: "give --do-sample or --greedy, not both")
        }
        requested.doSample = arguments.isSet("--do-sample") ? true : arguments.isSet("--greedy") ? false : nil
        requested.numReturnSequences = try arguments.string("--num-return-sequences").map { _ in try TrainCommand.positiveInt(arguments, "--num-return-sequences") }
        if let maxNew = try arguments.int("--max-new-tokens") {
            guard maxNew > 0 else { throw CLIError.usage(command: spec.name, message: "--max-new-tokens must be positive") }
            requested.maxNewTokens = maxNew
        }
        if let maxLength = try arguments.int("--max-length") {
            guard maxLength > prompt.count else {
                throw CLIError.usage(command: spec.name, message: "--max-length \(maxLength) leaves no room after the \(prompt.count)-token prompt")
            }
            requested.maxLength = maxLength
        }
        requested.minNewTokens = try nonNegative(arguments, "--min-new-tokens")
        requested.minLength = try nonNegative(arguments, "--min-length")
        if let temperature = try arguments.double("--temperature") {
            guard temperature > 0 else { throw CLIError.usage(command: spec.name, message: "--temperature must be positive") }
            requested.temperature = temperature
        }
        requested.topK = try nonNegative(arguments, "--top-k")
        if let topP = try arguments.double("--top-p") {
            guard topP > 0 && topP <= 1 else { throw CLIError.usage(command: spec.name, message: "--top-p must be in (0, 1]") }
            requested.topP = topP
        }
        if let penalty = try arguments.double("--repetition-penalty") {
            guard penalty > 0 else { throw CLIError.usage(command: spec.name, message: "--repetition-penalty must be positive") }
            requested.repetitionPenalty = penalty
        }
        requested.noRepeatNgramSize = try nonNegative(arguments, "--no-repeat-ngram-size")

        var (settings, count) = try defaults.overriding(with: requested).resolve(promptLength: prompt.count, positions: model.config.nPositions)
        let batch = try arguments.string("--batch").map { _ in try TrainCommand.positiveInt(arguments, "--batch") } ?? count
        guard let seed = UInt64(try arguments.required("--seed")) else { throw CLIError.usage(command: spec.name, message: "--seed must be a non-negative integer") }
        settings.seed = seed
        settings.stopAtEOS = !arguments.isSet("--no-stop-at-eos")
        // A model saved without a generation_config.json (by gpt2-ddp train before it wrote one)
        // also stops at the tokenizer's eos: Trainer would have listed it there ([new eos, old eos]).
        if !defaults.isGenerationConfigFile, let eos = tokenizer?.eosTokenID { settings.eosTokenIDs.insert(eos) }

        if prompt.count + settings.maxNewTokens > model.config.nPositions {
            console.warn("warning: prompt (\(prompt.count)) plus max new tokens (\(settings.maxNewTokens)) exceeds the model's \(model.config.nPositions) positions; generation stops there")
        }
        let sequences = try model.generate(prompt: prompt, count: count, batchSize: batch, settings: settings, weightsDType: dtype)
        for ids in sequences {
            let text = try tokenizer?.decode(ids, skipSpecialTokens: true)
            if arguments.isSet("--json") {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                struct Line: Encodable { let ids: [Int]; let text: String? }
                console.print(String(decoding: try encoder.encode(Line(ids: ids, text: text)), as: UTF8.self))
            } else {
                console.print(text ?? ids.map(String.init).joined(separator: ","))
            }
        }
    }
}
