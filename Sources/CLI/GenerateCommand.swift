import Foundation
import GPT2
import Tokenizer

/// `gpt2-ddp generate`: new text from a model directory, as `model.generate()` makes it.
enum GenerateCommand: Command {
    static let spec = CommandSpec(
        name: "generate",
        summary: "Generate text from a model directory with a key/value cache (sampling or greedy), as generate() does.",
        flags: [
            .option("--model-name-or-path", "DIR", "model directory"),
            .option("--tokenizer", "DIR", "tokenizer directory (default: the model directory)"),
            .option("--prompt", "TEXT", "text to continue (default: the bos token alone)"),
            .option("--prompt-ids", "IDS", "the prompt as comma-separated token ids (no tokenizer needed)"),
            .option("--num-return-sequences", "N", "how many texts to generate", default: "1", maximum: CountLimit.batchSize),
            .option("--batch", "N", "sequences generated at once (default: all of them)", maximum: CountLimit.batchSize),
            .option("--max-new-tokens", "N", "new tokens at most (default 20 unless --max-length is given)", maximum: CountLimit.tokens),
            .option("--max-length", "N", "prompt plus new tokens at most", maximum: CountLimit.tokens),
            .option("--min-new-tokens", "N", "suppress the end-of-sequence token until this many new tokens", default: "0", maximum: CountLimit.tokens),
            .option("--min-length", "N", "suppress the end-of-sequence token until prompt plus new tokens reach this", maximum: CountLimit.tokens),
            .toggle("--greedy", "take the most likely token instead of sampling"),
            .option("--temperature", "T", "divide the logits by T before sampling", default: "1.0"),
            .option("--top-k", "K", "sample among the K most likely tokens (0: all)", default: "50", maximum: GPT2Config.maxVocabularySize),
            .option("--top-p", "P", "sample among the most likely tokens that make up probability P", default: "1.0"),
            .option("--repetition-penalty", "R", "penalise tokens already in the sequence", default: "1.0"),
            .option("--no-repeat-ngram-size", "N", "never repeat an n-gram of this size (0: off)", default: "0", maximum: CountLimit.tokens),
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
            guard let bos = tokenizer?.bosTokenID ?? model.config.bosTokenID else {
                throw CLIError.failure("\(directory): no bos token to start from; give --prompt")
            }
            prompt = [bos]
        }

        var settings = GenerationSettings()
        let count = try TrainCommand.positiveInt(arguments, "--num-return-sequences")
        let batch = try arguments.string("--batch").map { _ in try TrainCommand.positiveInt(arguments, "--batch") } ?? count
        if let maxNew = try arguments.int("--max-new-tokens") {
            guard maxNew > 0 else { throw CLIError.usage(command: spec.name, message: "--max-new-tokens must be positive") }
            settings.maxNewTokens = maxNew
        } else if let maxLength = try arguments.int("--max-length") {
            guard maxLength > prompt.count else {
                throw CLIError.usage(command: spec.name, message: "--max-length \(maxLength) leaves no room after the \(prompt.count)-token prompt")
            }
            settings.maxNewTokens = maxLength - prompt.count
        }
        settings.minNewTokens = max(try nonNegative(arguments, "--min-new-tokens") ?? 0, (try nonNegative(arguments, "--min-length") ?? 0) - prompt.count)
        settings.greedy = arguments.isSet("--greedy")
        settings.temperature = try arguments.double("--temperature")!
        guard settings.temperature > 0 else { throw CLIError.usage(command: spec.name, message: "--temperature must be positive") }
        settings.topK = try nonNegative(arguments, "--top-k")!
        settings.topP = try arguments.double("--top-p")!
        guard settings.topP > 0 && settings.topP <= 1 else { throw CLIError.usage(command: spec.name, message: "--top-p must be in (0, 1]") }
        settings.repetitionPenalty = try arguments.double("--repetition-penalty")!
        guard settings.repetitionPenalty > 0 else { throw CLIError.usage(command: spec.name, message: "--repetition-penalty must be positive") }
        settings.noRepeatNgramSize = try nonNegative(arguments, "--no-repeat-ngram-size")!
        guard let seed = UInt64(try arguments.required("--seed")) else { throw CLIError.usage(command: spec.name, message: "--seed must be a non-negative integer") }
        settings.seed = seed
        settings.stopAtEOS = !arguments.isSet("--no-stop-at-eos")
        // The model's and the tokenizer's eos both end a sequence, as the generation config
        // Trainer writes lists [new eos, old eos].
        settings.eosTokenIDs = Set([model.config.eosTokenID, tokenizer?.eosTokenID].compactMap { $0 })

        if prompt.count + settings.maxNewTokens > model.config.nPositions {
            console.warn("warning: prompt (\(prompt.count)) plus --max-new-tokens (\(settings.maxNewTokens)) exceeds the model's \(model.config.nPositions) positions; generation stops there")
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
