import Foundation

/// GPT-2's hyper-parameters as Hugging Face's `config.json` spells them. Fields this program does
/// not interpret are kept in `extraFields` and written back unchanged.
public struct GPT2Config: Sendable, Equatable {
    public var vocabSize: Int
    public var nPositions: Int
    public var nEmbd: Int
    public var nLayer: Int
    public var nHead: Int
    /// Width of the MLP's hidden layer; `nil` means 4 * nEmbd, as in Hugging Face.
    public var nInner: Int?
    public var activationFunction: String
    public var layerNormEpsilon: Double
    public var initializerRange: Double
    public var scaleAttentionWeights: Bool
    public var bosTokenID: Int?
    public var eosTokenID: Int?
    public var padTokenID: Int?
    public var tieWordEmbeddings: Bool
    /// Dropout probabilities while training: after the embeddings, on the attention weights, and
    /// after each block's two output projections (Hugging Face's names and default, 0.1).
    public var embdPdrop: Double
    public var attnPdrop: Double
    public var residPdrop: Double
    public var extraFields: [String: JSONValue]

    public init(vocabSize: Int = 50257, nPositions: Int = 1024, nEmbd: Int = 768, nLayer: Int = 12, nHead: Int = 12,
                nInner: Int? = nil, activationFunction: String = "gelu_new", layerNormEpsilon: Double = 1e-5,
                initializerRange: Double = 0.02, scaleAttentionWeights: Bool = true, bosTokenID: Int? = 50256,
                eosTokenID: Int? = 50256, padTokenID: Int? = nil, tieWordEmbeddings: Bool = true,
                embdPdrop: Double = 0.1, attnPdrop: Double = 0.1, residPdrop: Double = 0.1,
                extraFields: [String: JSONValue] = [:]) {
        self.vocabSize = vocabSize
        self.nPositions = nPositions
        self.nEmbd = nEmbd
        self.nLayer = nLayer
        self.nHead = nHead
        self.nInner = nInner
        self.activationFunction = activationFunction
        self.layerNormEpsilon = layerNormEpsilon
        self.initializerRange = initializerRange
        self.scaleAttentionWeights = scaleAttentionWeights
        self.bosTokenID = bosTokenID
        self.eosTokenID = eosTokenID
        self.padTokenID = padTokenID
        self.tieWordEmbeddings = tieWordEmbeddings
        self.embdPdrop = embdPdrop
        self.attnPdrop = attnPdrop
        self.residPdrop = residPdrop
        self.extraFields = extraFields
    }

    public var innerSize: Int { nInner ?? 4 * nEmbd }
    public var headSize: Int { nEmbd / nHead }
    /// What attention scores are multiplied by before the softmax: 1/√head size (`scale_attn_weights`), else 1.
    var attentionScale: Float { scaleAttentionWeights ? 1 / Float(headSize).squareRoot() : 1 }

    /// Built-in shapes for training from scratch, named as on the Hugging Face hub.
    public static let presets: [String: GPT2Config] = [
        "gpt2": GPT2Config(nEmbd: 768, nLayer: 12, nHead: 12),
        "gpt2-medium": GPT2Config(nEmbd: 1024, nLayer: 24, nHead: 16),
        "gpt2-large": GPT2Config(nEmbd: 1280, nLayer: 36, nHead: 20),
        "gpt2-xl": GPT2Config(nEmbd: 1600, nLayer: 48, nHead: 25),
        // GPT-2's real vocabulary with a small body: trains in seconds on a laptop core.
        "tiny": GPT2Config(nPositions: 256, nEmbd: 64, nLayer: 2, nHead: 4),
    ]

    public static func preset(_ name: String) throws -> GPT2Config {
        guard let config = presets[name] else {
            throw ModelError.invalidConfig(source: "preset", problem: "unknown preset '\(name)' (known: \(presets.keys.sorted().joined(separator: ", ")))")
        }
        return config
    }

    /// A preset by name, or a Hugging Face config.json by path.
    public static func resolve(_ source: String) throws -> GPT2Config {
        FileManager.default.fileExists(atPath: source) ? try load(path: source) : try preset(source)
    }

    /// The activations that are the tanh approximation of GELU, all computed the same way.
    static let tanhGELUNames: Set<String> = ["gelu_new", "gelu_pytorch_tanh", "gelu_fast"]

    /// The settings that decide the computation and the token ids, named as in config.json, whose
    /// values differ between `self` and `other` (fields kept only for other programs are ignored).
    public func differences(from other: GPT2Config) -> [String] {
        let fields: [(String, String, String)] = [
            ("vocab_size", "\(vocabSize)", "\(other.vocabSize)"), ("n_positions", "\(nPositions)", "\(other.nPositions)"),
            ("n_embd", "\(nEmbd)", "\(other.nEmbd)"), ("n_layer", "\(nLayer)", "\(other.nLayer)"), ("n_head", "\(nHead)", "\(other.nHead)"),
            ("n_inner", "\(innerSize)", "\(other.innerSize)"), ("activation_function", activationFunction, other.activationFunction),
            ("layer_norm_epsilon", "\(layerNormEpsilon)", "\(other.layerNormEpsilon)"),
            ("scale_attn_weights", "\(scaleAttentionWeights)", "\(other.scaleAttentionWeights)"),
            ("bos_token_id", "\(bosTokenID.map(String.init) ?? "null")", "\(other.bosTokenID.map(String.init) ?? "null")"),
            ("eos_token_id", "\(eosTokenID.map(String.init) ?? "null")", "\(other.eosTokenID.map(String.init) ?? "null")"),
            ("pad_token_id", "\(padTokenID.map(String.init) ?? "null")", "\(other.padTokenID.map(String.init) ?? "null")"),
        ]
        return fields.filter { $0.1 != $0.2 }.map { "\($0.0) \($0.2) -> \($0.1)" }
    }

    /// Rejects shapes and options this implementation does not compute, and models too large for
    /// this machine's memory, naming `source` in the error.
    public func validate(source: String) throws {
        func fail(_ problem: String) -> ModelError { .invalidConfig(source: source, problem: problem) }
        for (name, value) in [("vocab_size", vocabSize), ("n_positions", nPositions), ("n_embd", nEmbd),
                              ("n_layer", nLayer), ("n_head", nHead), ("n_inner", innerSize)] where value <= 0 {
            throw fail("\(name) must be positive, got \(value)")
        }
        guard vocabSize <= Self.maxVocabularySize else {
            throw fail("vocab_size \(vocabSize) is above \(Self.maxVocabularySize): token ids are 32-bit")
        }
        guard nEmbd % nHead == 0 else { throw fail("n_embd \(nEmbd) is not divisible by n_head \(nHead)") }
        guard Self.tanhGELUNames.contains(activationFunction) else {
            throw fail("activation_function '\(activationFunction)' is not supported (use gelu_new)")
        }
        guard tieWordEmbeddings else { throw fail("untied word embeddings (tie_word_embeddings false) are not supported") }
        guard layerNormEpsilon > 0 else { throw fail("layer_norm_epsilon must be positive") }
        for (name, probability) in [("embd_pdrop", embdPdrop), ("attn_pdrop", attnPdrop), ("resid_pdrop", residPdrop)]
        where !(0...1).contains(probability) {
            throw fail("\(name) must be a probability between 0 and 1, got \(probability)")
        }
        for unsupported in ["scale_attn_by_inverse_layer_idx", "add_cross_attention"] where extraFields[unsupported] == .bool(true) {
            throw fail("\(unsupported) is not supported")
        }
        // A model holds its parameters and their gradients (GPT2Model allocates both).
        try requireMemory(copies: 2, companions: "their gradients", source: source)
    }
}

extension GPT2Config: Codable {
    private static let knownKeys: Set<String> = [
        "vocab_size", "n_positions", "n_ctx", "n_embd", "n_layer", "n_head", "n_inner", "activation_function",
        "layer_norm_epsilon", "initializer_range", "scale_attn_weights", "bos_token_id", "eos_token_id",
        "pad_token_id", "tie_word_embeddings", "embd_pdrop", "attn_pdrop", "resid_pdrop",
    ]

    public init(from decoder: Decoder) throws {
        let fields = try [String: JSONValue](from: decoder)
        func integer(_ key: String) throws -> Int? {
            switch fields[key] {
            case nil, .null?: return nil
            case let .number(value)?:
                guard let integer = Int(exactly: value) else { throw ModelError.invalidConfig(source: "config.json", problem: "\(key) is not an integer") }
                return integer
            default: throw ModelError.invalidConfig(source: "config.json", problem: "\(key) is not an integer")
            }
        }
        func required(_ key: String, _ fallback: Int) throws -> Int { try integer(key) ?? fallback }
        func number(_ key: String, _ fallback: Double) throws -> Double {
            switch fields[key] {
            case nil: return fallback
            case let .number(value)?: return value
            default: throw ModelError.invalidConfig(source: "config.json", problem: "\(key) is not a number")
            }
        }
        func flag(_ key: String, _ fallback: Bool) throws -> Bool {
            switch fields[key] {
            case nil: return fallback
            case let .bool(value)?: return value
            default: throw ModelError.invalidConfig(source: "config.json", problem: "\(key) is not true or false")
            }
        }
        let defaults = GPT2Config()
        var activation = defaults.activationFunction
        if case let .string(name)? = fields["activation_function"] { activation = name }
        self.init(
            vocabSize: try required("vocab_size", defaults.vocabSize),
            nPositions: try integer("n_positions") ?? integer("n_ctx") ?? defaults.nPositions,
            nEmbd: try required("n_embd", defaults.nEmbd),
            nLayer: try required("n_layer", defaults.nLayer),
            nHead: try required("n_head", defaults.nHead),
            nInner: try integer("n_inner"),
            activationFunction: activation,
            layerNormEpsilon: try number("layer_norm_epsilon", defaults.layerNormEpsilon),
            initializerRange: try number("initializer_range", defaults.initializerRange),
            scaleAttentionWeights: try flag("scale_attn_weights", true),
            bosTokenID: fields["bos_token_id"] == nil ? defaults.bosTokenID : try integer("bos_token_id"),
            eosTokenID: fields["eos_token_id"] == nil ? defaults.eosTokenID : try integer("eos_token_id"),
            padTokenID: try integer("pad_token_id"),
            tieWordEmbeddings: try flag("tie_word_embeddings", true),
            embdPdrop: try number("embd_pdrop", defaults.embdPdrop),
            attnPdrop: try number("attn_pdrop", defaults.attnPdrop),
            residPdrop: try number("resid_pdrop", defaults.residPdrop),
            extraFields: fields.filter { !Self.knownKeys.contains($0.key) })
    }

    public func encode(to encoder: Encoder) throws {
        var fields = extraFields
        fields["model_type"] = fields["model_type"] ?? .string("gpt2")
        fields["architectures"] = fields["architectures"] ?? .array([.string("GPT2LMHeadModel")])
        fields["vocab_size"] = .number(Double(vocabSize))
        fields["n_positions"] = .number(Double(nPositions))
        fields["n_embd"] = .number(Double(nEmbd))
        fields["n_layer"] = .number(Double(nLayer))
        fields["n_head"] = .number(Double(nHead))
        fields["n_inner"] = nInner.map { .number(Double($0)) } ?? .null
        fields["activation_function"] = .string(activationFunction)
        fields["layer_norm_epsilon"] = .number(layerNormEpsilon)
        fields["initializer_range"] = .number(initializerRange)
        fields["scale_attn_weights"] = .bool(scaleAttentionWeights)
        fields["bos_token_id"] = bosTokenID.map { .number(Double($0)) } ?? .null
        fields["eos_token_id"] = eosTokenID.map { .number(Double($0)) } ?? .null
        fields["pad_token_id"] = padTokenID.map { .number(Double($0)) } ?? .null
        fields["tie_word_embeddings"] = .bool(tieWordEmbeddings)
        fields["embd_pdrop"] = .number(embdPdrop)
        fields["attn_pdrop"] = .number(attnPdrop)
        fields["resid_pdrop"] = .number(residPdrop)
        try fields.encode(to: encoder)
    }

    /// Reads and validates `config.json`; errors name the file.
    public static func load(path: String) throws -> GPT2Config {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ModelError.missingFile(path: path)
        }
        let config: GPT2Config
        do {
            config = try JSONDecoder().decode(GPT2Config.self, from: data)
        } catch let error as ModelError {
            if case let .invalidConfig(_, problem) = error { throw ModelError.invalidConfig(source: path, problem: problem) }
            throw error
        } catch {
            throw ModelError.invalidConfig(source: path, problem: "not a JSON object of GPT-2 settings")
        }
        try config.validate(source: path)
        return config
    }

    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}

extension GPT2Config {
    /// The config's fields that hold whole numbers (`null` allowed where Hugging Face allows None).
    private static let integerKeys: Set<String> = ["vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "n_inner",
                                                   "bos_token_id", "eos_token_id", "pad_token_id"]
    private static let optionalKeys: Set<String> = ["n_inner", "bos_token_id", "eos_token_id", "pad_token_id"]
    /// `GPT2Config.attribute_map`: the generic names `transformers` also accepts.
    private static let aliases = ["hidden_size": "n_embd", "max_position_embeddings": "n_positions",
                                  "num_attention_heads": "n_head", "num_hidden_layers": "n_layer"]

    /// `run_clm.py`'s `--config_overrides` ("resid_pdrop=0.0,n_embd=16"): each key must be a field of
    /// the config (as written to config.json) and takes a value of that field's type; the result is
    /// validated as a loaded config is.
    public func applyingOverrides(_ overrides: String) throws -> GPT2Config {
        func fail(_ problem: String) -> ModelError { .invalidOverride(problem: problem) }
        var fields = try JSONDecoder().decode([String: JSONValue].self, from: jsonData())
        for pair in overrides.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = parts[0].trimmingCharacters(in: .whitespaces)
            let key = Self.aliases[name] ?? name
            guard parts.count == 2, !key.isEmpty else { throw fail("'\(pair)' is not key=value (pairs are separated by commas)") }
            let text = parts[1].trimmingCharacters(in: .whitespaces)
            guard let old = fields[key] else { throw fail("\(name) is not a field of the model config") }
            switch old {
            case _ where Self.integerKeys.contains(key):
                if Self.optionalKeys.contains(key), ["null", "none"].contains(text.lowercased()) { fields[key] = .null; continue }
                guard let value = Int(text) else { throw fail("\(key) takes a whole number\(Self.optionalKeys.contains(key) ? " or null" : ""), got '\(text)'") }
                fields[key] = .number(Double(value))
            case .bool:
                switch text.lowercased() {
                case "true", "1", "y", "yes": fields[key] = .bool(true)
                case "false", "0", "n", "no": fields[key] = .bool(false)
                default: throw fail("\(key) takes true or false, got '\(text)'")
                }
            case .number:
                guard let value = Double(text), value.isFinite else { throw fail("\(key) takes a number, got '\(text)'") }
                fields[key] = .number(value)
            case .string: fields[key] = .string(text)
            case .null, .array, .object:
                throw fail("\(key) is not a number, true/false or a string in the config, so it cannot be overridden")
            }
        }
        let config: GPT2Config
        do {
            config = try JSONDecoder().decode(GPT2Config.self, from: JSONEncoder().encode(fields))
            try config.validate(source: "")
        } catch let ModelError.invalidConfig(_, problem) {
            throw fail(problem)
        }
        return config
    }
}
