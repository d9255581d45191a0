import Foundation
import SafeTensors

/// `generation_config.json` as `transformers` 5.x reads and writes it: the defaults `generate()`
/// takes for a model. A field left unset (nil) falls back to GenerationConfig's global default
/// (greedy, 20 new tokens, top_k 50, top_p 1, temperature 1, ...) when resolved.
public struct GenerationConfig: Sendable, Equatable {
    public static let fileName = "generation_config.json"
    /// Written as `transformers_version`: the release whose `generate()` this program follows.
    public static let transformersVersion = "5.24.0"

    public var doSample: Bool?
    /// Prompt plus new tokens; `maxNewTokens` takes precedence, as in `transformers`.
    public var maxLength: Int?
    public var maxNewTokens: Int?
    /// Prompt plus new tokens before eos may come; `minNewTokens` takes precedence.
    public var minLength: Int?
    public var minNewTokens: Int?
    public var temperature: Double?
    public var topK: Int?
    public var topP: Double?
    public var repetitionPenalty: Double?
    public var noRepeatNgramSize: Int?
    public var numReturnSequences: Int?
    public var bosTokenID: Int?
    /// `eos_token_id`, which the file holds as one id or a list of them.
    public var eosTokenIDs: [Int]?
    public var padTokenID: Int?
    /// Fields this program does not interpret (`use_cache`, `_from_model_config`, ...), written back unchanged.
    public var extraFields: [String: JSONValue] = [:]
    /// The file the values came from, named in errors; nil when made in memory.
    public var source: String?

    public init() {}

    /// The keys this program interprets, as the file spells them.
    static let interpretedKeys: Set<String> = [
        "do_sample", "max_length", "max_new_tokens", "min_length", "min_new_tokens", "temperature", "top_k", "top_p",
        "repetition_penalty", "no_repeat_ngram_size", "num_return_sequences", "bos_token_id", "eos_token_id", "pad_token_id",
    ]

    /// Settings that would make `generate()` decode differently than greedy search or plain
    /// sampling, with the value that leaves them off: a file that sets one is refused rather than
    /// followed halfway.
    static let unsupported: [String: JSONValue] = [
        "num_beams": .number(1), "num_beam_groups": .number(1), "diversity_penalty": .number(0), "penalty_alpha": .null,
        "dola_layers": .null, "typical_p": .number(1), "min_p": .null, "top_h": .null, "epsilon_cutoff": .number(0),
        "eta_cutoff": .number(0), "bad_words_ids": .null, "force_words_ids": .null, "constraints": .null,
        "suppress_tokens": .null, "begin_suppress_tokens": .null, "forced_bos_token_id": .null, "forced_eos_token_id": .null,
        "sequence_bias": .null, "guidance_scale": .number(1), "exponential_decay_length_penalty": .null,
        "stop_strings": .null, "max_time": .null, "watermarking_config": .null,
    ]

    /// The model config's generation attributes that `from_model_config` carries over besides the
    /// token ids, with the values a `PretrainedConfig` has when config.json does not say.
    static let modelConfigDefaults: [String: JSONValue] = [
        "output_attentions": .bool(false), "output_hidden_states": .bool(false), "use_cache": .bool(true),
    ]

    /// Reads the fields of a generation config; errors name `source`.
    public init(fields: [String: JSONValue], source: String) throws {
        func fail(_ problem: String) -> ModelError { .invalidConfig(source: source, problem: problem) }
        func integer(_ key: String) throws -> Int? {
            switch fields[key] {
            case nil, .null?: return nil
            case let .number(value)?:
                guard let integer = Int(exactly: value) else { throw fail("\(key) is not an integer") }
                return integer
            default: throw fail("\(key) is not an integer")
            }
        }
        func number(_ key: String) throws -> Double? {
            switch fields[key] {
            case nil, .null?: return nil
            case let .number(value)?: return value
            default: throw fail("\(key) is not a number")
            }
        }
        for (key, off) in Self.unsupported.sorted(by: { $0.key < $1.key }) {
            guard let value = fields[key], value != .null, value != off else { continue }
            let text = (try? JSONEncoder().encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "set"
            throw fail("\(key) \(text) is not supported (gpt2-ddp generates by greedy search or sampling)")
        }
        switch fields["do_sample"] {
        case nil, .null?: doSample = nil
        case let .bool(value)?: doSample = value
        default: throw fail("do_sample is not true or false")
        }
        maxLength = try integer("max_length")
        maxNewTokens = try integer("max_new_tokens")
        minLength = try integer("min_length")
        minNewTokens = try integer("min_new_tokens")
        temperature = try number("temperature")
        topK = try integer("top_k")
        topP = try number("top_p")
        repetitionPenalty = try number("repetition_penalty")
        noRepeatNgramSize = try integer("no_repeat_ngram_size")
        numReturnSequences = try integer("num_return_sequences")
        bosTokenID = try integer("bos_token_id")
        padTokenID = try integer("pad_token_id")
        switch fields["eos_token_id"] {
        case nil, .null?: eosTokenIDs = nil
        case .number?: eosTokenIDs = [try integer("eos_token_id")!]
        case let .array(values)?:
            eosTokenIDs = try values.map { value in
                guard case let .number(number) = value, let id = Int(exactly: number) else { throw fail("eos_token_id is not a token id or a list of them") }
                return id
            }
        default: throw fail("eos_token_id is not a token id or a list of them")
        }
        // transformers_version says who wrote the file; writing it again says this program's version.
        extraFields = fields.filter { !Self.interpretedKeys.contains($0.key) && $0.key != "transformers_version" }
        self.source = source
    }

    /// What `GenerationConfig.from_model_config` makes of a model's config: its bos, eos and pad
    /// ids, the generation settings a (legacy) config.json holds, `output_attentions`,
    /// `output_hidden_states` and `use_cache`, marked `_from_model_config`. This is what
    /// `save_pretrained` writes for a model that never had a generation config of its own.
    public init(modelConfig: GPT2Config, source: String = GPT2Model.configFileName) throws {
        let carried = Self.interpretedKeys.union(Self.unsupported.keys).union(Self.modelConfigDefaults.keys)
        var fields = modelConfig.extraFields.filter { carried.contains($0.key) && $0.value != .null }
        fields.merge(Self.modelConfigDefaults) { own, _ in own }
        for (key, id) in [("bos_token_id", modelConfig.bosTokenID), ("eos_token_id", modelConfig.eosTokenID), ("pad_token_id", modelConfig.padTokenID)] {
            if let id { fields[key] = .number(Double(id)) }
        }
        fields["_from_model_config"] = .bool(true)
        try self.init(fields: fields, source: source)
    }

    /// A model directory's generation defaults, found as `from_pretrained` finds them: its
    /// generation_config.json, or, when it has none, what `from_model_config` makes of `modelConfig`
    /// (the directory's config.json).
    public static func load(directory: String, modelConfig: GPT2Config) throws -> GenerationConfig {
        let path = URL(fileURLWithPath: directory).appendingPathComponent(fileName).path
        guard FileManager.default.fileExists(atPath: path) else {
            return try GenerationConfig(modelConfig: modelConfig, source: GPT2Model.configPath(directory: directory))
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ModelError.invalidConfig(source: path, problem: "cannot be read")
        }
        guard let fields = try? JSONDecoder().decode([String: JSONValue].self, from: data) else {
            throw ModelError.invalidConfig(source: path, problem: "not a JSON object of generation settings")
        }
        return try GenerationConfig(fields: fields, source: path)
    }

    /// Whether this was read from a generation_config.json (rather than made from config.json).
    public var isGenerationConfigFile: Bool { source.map { URL(fileURLWithPath: $0).lastPathComponent == Self.fileName } ?? false }

    /// `self` with the values `other` sets put in place of its own, as keyword arguments to
    /// `generate()` replace a generation config's. A length given in `other` replaces both of
    /// `self`'s lengths of that kind (in `transformers` a file's `max_new_tokens` would beat an
    /// explicit `max_length`), so that what is asked for is what happens.
    public func overriding(with other: GenerationConfig) -> GenerationConfig {
        var result = self
        if other.maxLength != nil || other.maxNewTokens != nil { (result.maxLength, result.maxNewTokens) = (other.maxLength, other.maxNewTokens) }
        if other.minLength != nil || other.minNewTokens != nil { (result.minLength, result.minNewTokens) = (other.minLength, other.minNewTokens) }
        result.doSample = other.doSample ?? doSample
        result.temperature = other.temperature ?? temperature
        result.topK = other.topK ?? topK
        result.topP = other.topP ?? topP
        result.repetitionPenalty = other.repetitionPenalty ?? repetitionPenalty
        result.noRepeatNgramSize = other.noRepeatNgramSize ?? noRepeatNgramSize
        result.numReturnSequences = other.numReturnSequences ?? numReturnSequences
        result.bosTokenID = other.bosTokenID ?? bosTokenID
        result.eosTokenIDs = other.eosTokenIDs ?? eosTokenIDs
        result.padTokenID = other.padTokenID ?? padTokenID
        return result
    }

    /// What `generate()` does with these values for a prompt of `promptLength` tokens on a model of
    /// `positions` positions, and how many sequences it returns. Values out of range are errors
    /// naming `source`; the sampling ones are checked only when sampling, as `transformers` uses them only then.
    public func resolve(promptLength: Int, positions: Int) throws -> (settings: GenerationSettings, count: Int) {
        func fail(_ problem: String) -> ModelError { .invalidConfig(source: source ?? "generation config", problem: problem) }
        var settings = GenerationSettings()
        settings.greedy = !(doSample ?? false)
        if let maxNewTokens {
            guard maxNewTokens > 0 else { throw fail("max_new_tokens must be positive, got \(maxNewTokens)") }
            settings.maxNewTokens = maxNewTokens
        } else if let maxLength {
            guard maxLength > promptLength else { throw fail("max_length \(maxLength) leaves no room after the \(promptLength)-token prompt") }
            settings.maxNewTokens = maxLength - promptLength
        } else {
            // Neither given: 20 new tokens, within the model's positions (5.x; older versions stopped at 20 in all).
            settings.maxNewTokens = min(20, positions - promptLength)
        }
        if let minNewTokens {
            guard minNewTokens >= 0 else { throw fail("min_new_tokens must not be negative, got \(minNewTokens)") }
            settings.minNewTokens = minNewTokens
        } else {
            let minLength = minLength ?? 0
            guard minLength >= 0 else { throw fail("min_length must not be negative, got \(minLength)") }
            settings.minNewTokens = max(0, minLength - promptLength)
        }
        settings.repetitionPenalty = repetitionPenalty ?? 1
        guard settings.repetitionPenalty > 0 else { throw fail("repetition_penalty must be positive, got \(settings.repetitionPenalty)") }
        settings.noRepeatNgramSize = noRepeatNgramSize ?? 0
        guard settings.noRepeatNgramSize >= 0 else { throw fail("no_repeat_ngram_size must not be negative, got \(settings.noRepeatNgramSize)") }
        (settings.temperature, settings.topK, settings.topP) = (temperature ?? 1, topK ?? 50, topP ?? 1)
        if !settings.greedy {
            guard settings.temperature > 0 else { throw fail("temperature must be positive, got \(settings.temperature)") }
            guard settings.topK >= 0 else { throw fail("top_k must not be negative, got \(settings.topK)") }
            guard settings.topP > 0 && settings.topP <= 1 else { throw fail("top_p must be in (0, 1], got \(settings.topP)") }
        }
        settings.eosTokenIDs = Set(eosTokenIDs ?? [])
        let count = numReturnSequences ?? 1
        guard count > 0 else { throw fail("num_return_sequences must be positive, got \(count)") }
        return (settings, count)
    }

    /// The file as `save_pretrained` writes it: the values set, the fields kept, and this
    /// program's `transformers_version`; keys sorted.
    public func jsonData() throws -> Data {
        var fields = extraFields
        func put(_ key: String, _ value: JSONValue?) { if let value { fields[key] = value } }
        put("do_sample", doSample.map(JSONValue.bool))
        for (key, value) in [("max_length", maxLength), ("max_new_tokens", maxNewTokens), ("min_length", minLength),
                             ("min_new_tokens", minNewTokens), ("top_k", topK), ("no_repeat_ngram_size", noRepeatNgramSize),
                             ("num_return_sequences", numReturnSequences), ("bos_token_id", bosTokenID), ("pad_token_id", padTokenID)] {
            put(key, value.map { .number(Double($0)) })
        }
        for (key, value) in [("temperature", temperature), ("top_p", topP), ("repetition_penalty", repetitionPenalty)] {
            put(key, value.map(JSONValue.number))
        }
        put("eos_token_id", eosTokenIDs.map { ids in ids.count == 1 ? .number(Double(ids[0])) : .array(ids.map { .number(Double($0)) }) })
        fields["transformers_version"] = .string(Self.transformersVersion)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(fields)
    }

    /// Writes `generation_config.json` into `directory` (atomically), as `save_pretrained` does
    /// beside config.json.
    public func write(directory: String) throws {
        try AtomicFile.write(try jsonData(), to: URL(fileURLWithPath: directory).appendingPathComponent(Self.fileName).path)
    }
}
