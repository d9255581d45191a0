import Data
import Distributed
import Foundation
import GPT2
import Tokenizer

/// A model, its tokenizer and the data, made ready as the recipe does before `Trainer.train()`:
/// special tokens added, embeddings resized, texts wrapped, tokenized and cut to the block size.
public struct PreparedRun {
    public let model: GPT2Model
    public let tokenizer: GPT2Tokenizer?
    public let train: Dataset
    public let validation: Dataset?
    public let collator: Collator
    /// Identifies the tokenizer's vocabulary and added tokens, so a resume can refuse another one.
    public let tokenizerFingerprint: String
    /// What `save_pretrained` writes beside the model, with the eos `Trainer` leaves in it.
    public let generationConfig: GenerationConfig

    /// Loads or initialises the model; `validationRequired` makes a missing validation set an error
    /// (evaluation), otherwise the validation split applies (0 = none).
    /// Every rank of `communicator` calls it; only rank 0 writes the token cache.
    public static func prepare(_ arguments: TrainingArguments, dataFile: String, validationRequired: Bool = false, communicator: Communicator,
                               log: (String) -> Void) throws -> PreparedRun {
        let model: GPT2Model
        if let path = arguments.modelNameOrPath {
            let (loaded, report) = try GPT2Model.load(directory: path)
            if !report.unexpected.isEmpty { log("warning: tensors not part of GPT2LMHeadModel were not loaded: \(report.unexpected.joined(separator: ", "))") }
            model = loaded
            if let overrides = arguments.configOverrides { try model.applyConfigOverrides(overrides, directory: path) }
        } else if let source = arguments.modelConfig {
            var config = try GPT2Config.resolve(source)
            if let overrides = arguments.configOverrides { config = try config.applyingOverrides(overrides) }
            model = try GPT2Model.randomlyInitialized(config: config, seed: arguments.seed)
        } else {
            throw TrainingError.invalidSetting("give --model-name-or-path DIR or --model-config NAME")
        }
        model.gradientCheckpointing = arguments.gradientCheckpointing
        let blockSize = arguments.blockSize ?? model.config.nPositions
        guard blockSize > 1, blockSize <= model.config.nPositions else {
            throw TrainingError.invalidSetting("--block-size \(blockSize) must be between 2 and the model's n_positions (\(model.config.nPositions))")
        }

        var tokenizer: GPT2Tokenizer?
        let template = arguments.template.replacingOccurrences(of: "{bos}", with: arguments.bosToken)
            .replacingOccurrences(of: "{eos}", with: arguments.eosToken)
        // Untruncated examples are cached, so a restart with another --block-size still reads them.
        func tokenized(_ texts: TextReader, dataPath: String, tokenizer: GPT2Tokenizer) throws -> Dataset {
            func encode(_ text: String) -> [Int32] { tokenizer.encode(template.replacingOccurrences(of: "{text}", with: text)).map { Int32($0) } }
            // Blank texts hold no example; saying how many were passed over explains a count that
            // is not the file's line count.
            func logBlankTexts() {
                if texts.blankCount > 0 { log("skipped \(texts.blankCount) blank examples in \(dataPath)") }
            }
            func inMemory() throws -> Dataset {
                var examples: [TokenizedExample] = []
                while let text = try texts.next() { examples.append(TokenizedExample(inputIDs: encode(text))) }
                logBlankTexts()
                return Dataset(examples: examples)
            }
            let cacheDir = arguments.cacheDir ?? (arguments.outputDir.isEmpty ? nil : URL(fileURLWithPath: arguments.outputDir).appendingPathComponent(".cache").path)
            guard let cacheDir else { return try inMemory() }
            // Rank 0 alone reads or writes the cache, then tells the others where it is, and they
            // map the same file: one tokenization, and one copy in the page cache per machine.
            var cachePath = "", storage: TokenStorage?
            if communicator.isMain {
                let settings = [fingerprint(of: tokenizer), template, arguments.textColumn, arguments.textField].joined(separator: "\u{1}")
                cachePath = URL(fileURLWithPath: cacheDir).appendingPathComponent(try TokenCache.fileName(dataPath: dataPath, settings: settings)).path
                if let cached = TokenCache.load(path: cachePath) {
                    log("read \(cached.count) tokenized examples from the cache \(cachePath)")
                    storage = cached
                } else {
                    try TokenCache.write(to: cachePath) { cache in
                        while let text = try texts.next() { try cache.append(encode(text)) }
                    }
                    logBlankTexts()
                    guard let written = TokenCache.load(path: cachePath) else {
                        throw DataError(path: cachePath, problem: "does not read back as the token cache just written")
                    }
                    log("tokenized \(written.count) examples into the cache \(cachePath)")
                    storage = written
                }
            }
            cachePath = String(decoding: try communicator.broadcast(Data(cachePath.utf8)), as: UTF8.self)
            // A rank on another machine whose cache dir is not rank 0's tokenizes into memory.
            guard let storage = storage ?? TokenCache.load(path: cachePath) else { return try inMemory() }
            return Dataset(storage: storage)
        }
        // Each file read, with the line of each pre-tokenized example, for the check of its ids below.
        var filesRead: [(path: String, storage: TokenStorage, lines: [Int]?)] = []
        func readDataset(_ path: String) throws -> Dataset {
            let dataset: Dataset, lines: [Int]?
            switch try DataFile.open(path: path, textColumn: arguments.textColumn, textField: arguments.textField) {
            case let .tokenized(examples, exampleLines):
                (dataset, lines) = (Dataset(examples: examples), exampleLines)
            case let .texts(texts):
                let loaded = try tokenizer ?? loadTokenizer(arguments)
                tokenizer = loaded
                (dataset, lines) = (try tokenized(texts, dataPath: path, tokenizer: loaded), nil)
            }
            filesRead.append((path, dataset.storage, lines))
            return dataset.truncated(to: blockSize)
        }
        var dataset = try readDataset(dataFile)
        var validation: Dataset?
        if let path = arguments.validationFile {
            // The training file given again is evaluated whole, as any other validation file is
            // (not split), and read once.
            if sameFile(path, dataFile) {
                if !validationRequired { log("--validation-file is the training file: evaluating on the data trained on") }
                validation = dataset
            } else {
                validation = try readDataset(path)
            }
        }
        // Only once the data has read without error, so that a bad file gives a one-line error.
        let originalEOS = model.config.eosTokenID
        if let tokenizer { fit(model, to: tokenizer, log: log) }
        // Trainer aligns the generation config too: it stops at the tokenizer's eos and the model's old one.
        var generationConfig = try GenerationConfig(modelConfig: model.config)
        if let eos = model.config.eosTokenID { generationConfig.eosTokenIDs = [eos] + [originalEOS].compactMap { $0 }.filter { $0 != eos } }
        // Every id is checked before training starts, not when its batch comes up.
        let vocabularySize = model.config.vocabSize
        for (path, storage, lines) in filesRead {
            if let bad = storage.firstIDOutside(vocabularySize: vocabularySize) {
                let problem = bad.isLabel ? "label \(bad.value) is outside the model's vocabulary (size \(vocabularySize); -100 marks a token not predicted)"
                    : "token id \(bad.value) is outside the model's vocabulary (size \(vocabularySize))"
                throw DataError(path: path, line: lines?[bad.example], problem: problem)
            }
        }
        if dataset.truncatedCount > 0 { log("\(dataset.truncatedCount) of \(dataset.count) examples were cut to --block-size \(blockSize)") }
        if validationRequired {
            validation = validation ?? dataset
        } else if validation == nil && arguments.validationSplit > 0 {
            guard dataset.count >= 2 else { throw DataError(path: dataFile, problem: "has one example, too few to hold out a validation split") }
            (dataset, validation) = dataset.split(validationFraction: arguments.validationSplit, seed: arguments.seed)
        }
        if arguments.packing {
            dataset = dataset.packed(blockSize: blockSize)
            guard dataset.count > 0 else { throw DataError(path: dataFile, problem: "has fewer tokens than one --block-size block") }
        }
        // As run_clm.py: the first examples after the split (and the grouping into blocks).
        if let limit = arguments.maxTrainSamples { dataset = dataset.first(limit) }
        if let limit = arguments.maxEvalSamples { validation = validation?.first(limit) }
        guard let padID = model.config.padTokenID ?? model.config.eosTokenID else {
            throw TrainingError.invalidSetting("the model config has neither pad_token_id nor eos_token_id to pad with")
        }
        let tokenizerFingerprint = tokenizer.map(fingerprint(of:)) ?? "pretokenized"
        return PreparedRun(model: model, tokenizer: tokenizer, train: dataset, validation: validation,
                           collator: Collator(padTokenID: Int32(padID)), tokenizerFingerprint: tokenizerFingerprint,
                           generationConfig: generationConfig)
    }

    /// What decides the ids a tokenizer gives: its vocabulary and merges (by their digest), its
    /// size and its added tokens with the options that change where they match.
    static func fingerprint(of tokenizer: GPT2Tokenizer) -> String {
        let addedTokens = tokenizer.addedTokens.map { id, token in
            let options = [("lstrip", token.lstrip), ("rstrip", token.rstrip), ("single_word", token.singleWord), ("normalized", token.normalized)]
                .filter(\.1).map { "+" + $0.0 }
            return "\(id)=\(token.content)" + options.joined()
        }
        return "\(tokenizer.count):\(tokenizer.modelDigest):" + addedTokens.joined(separator: ",")
    }

    /// Whether two paths name one file, however spelled (relative, through a symbolic link).
    static func sameFile(_ first: String, _ second: String) -> Bool {
        canonicalPath(first) == canonicalPath(second)
    }

    /// The tokenizer with the recipe's special tokens added.
    static func loadTokenizer(_ arguments: TrainingArguments) throws -> GPT2Tokenizer {
        guard let directory = arguments.tokenizer ?? arguments.modelNameOrPath else {
            throw TrainingError.invalidSetting("text data needs a tokenizer: give --tokenizer DIR (vocab.json and merges.txt)")
        }
        // As from_pretrained(dir, bos_token=..., eos_token=..., pad_token=...): the role tokens
        // are added as special tokens after the vocabulary when it lacks them.
        return try GPT2Tokenizer.load(directory: URL(fileURLWithPath: directory),
                                      roles: [.bos: arguments.bosToken, .eos: arguments.eosToken, .pad: arguments.padToken])
    }

    /// The model's embeddings grow to the tokenizer's added tokens and its config takes the
    /// tokenizer's bos, eos and pad ids, as `Trainer` aligns them.
    static func fit(_ model: GPT2Model, to tokenizer: GPT2Tokenizer, log: (String) -> Void) {
        if tokenizer.count > model.config.vocabSize {
            log("resized the token embeddings from \(model.config.vocabSize) to \(tokenizer.count) for the added tokens")
            model.resizeTokenEmbeddings(to: tokenizer.count)
        }
        var config = model.config
        (config.bosTokenID, config.eosTokenID, config.padTokenID) = (tokenizer.bosTokenID, tokenizer.eosTokenID, tokenizer.padTokenID)
        model.replaceParameters(config: config, parameters: model.parameters)
    }
}
