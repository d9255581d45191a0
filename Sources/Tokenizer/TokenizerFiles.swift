import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The special-token roles of a GPT-2 tokenizer, named by their transformers keys.
public enum SpecialTokenRole: String, CaseIterable, Sendable {
    // Declared in transformers' order, which decides the ids of role tokens that are new.
    case bos = "bos_token"
    case eos = "eos_token"
    case unk = "unk_token"
    case pad = "pad_token"
}

extension GPT2Tokenizer {
    /// Loads a Hugging Face tokenizer directory: `tokenizer.json` if there is one (as transformers
    /// does), otherwise `vocab.json` and `merges.txt`; then added and special tokens from
    /// `tokenizer_config.json` (`added_tokens_decoder`, role keys, additional special tokens),
    /// `special_tokens_map.json` and `added_tokens.json`. Roles that no file sets get
    /// GPT2Tokenizer's defaults: `<|endoftext|>` for bos, eos and unk, none for pad. Role tokens are
    /// special added tokens, so they are never split.
    ///
    /// `roles` overrides the files like `from_pretrained(directory, eos_token: ...)`: the recipe's
    /// `[.bos: "<|endoftext|>", .eos: "<|EOS|>", .pad: "<|pad|>"]` keeps `<|endoftext|>` at 50256
    /// and adds `<|EOS|>` as 50257 and `<|pad|>` as 50258.
    public static func load(directory: URL, roles: [SpecialTokenRole: String] = [:]) throws -> GPT2Tokenizer {
        let directory = TokenizerDirectory(url: directory)
        try directory.checkIsDirectory()
        let tokenizer: GPT2Tokenizer
        if directory.contains("tokenizer.json") {
            let file = try directory.jsonFile("tokenizer.json")
            let (model, addedTokens) = try file.tokenizerJSON()
            tokenizer = model
            try tokenizer.addTokens(addedTokens, source: file.path)
        } else {
            let vocabulary = try directory.tokenIDs("vocab.json")
            let mergesPath = directory.path(of: "merges.txt")
            let (merges, lineNumbers) = try mergesFile(at: mergesPath, text: directory.text("merges.txt"))
            tokenizer = try GPT2Tokenizer(vocabulary: vocabulary, vocabularySource: directory.path(of: "vocab.json"),
                                          merges: merges, mergeLocation: { "\(mergesPath) line \(lineNumbers[$0])" })
        }

        let config = try directory.optionalJSONFile("tokenizer_config.json")
        let specialTokensMap = try directory.optionalJSONFile("special_tokens_map.json")
        if let config {
            for key in ["add_prefix_space", "add_bos_token", "add_eos_token"] {
                if try config.bool(config.root[key], at: key) == true {
                    throw TokenizerError.unsupported(source: config.path, reason: "\(key) is true")
                }
            }
            if let decoder = config.root["added_tokens_decoder"] {
                try tokenizer.addTokens(config.addedTokensDecoder(decoder), source: config.path)
            }
        }
        if directory.contains("added_tokens.json") {
            let newTokens = try directory.tokenIDs("added_tokens.json")
                .filter { tokenizer.addedToken(withContent: $0.key) == nil }
                .sorted { $0.value < $1.value }
                .map { (token: AddedToken($0.key), id: $0.value) }
            try tokenizer.addTokens(newTokens, source: directory.path(of: "added_tokens.json"))
        }

        var specialTokens: [AddedToken] = []
        for role in SpecialTokenRole.allCases {
            let token: AddedToken?
            if let override = roles[role] {
                token = AddedToken(override, special: true)
            } else if let config, config.root.keys.contains(role.rawValue) {
                token = try config.specialToken(config.root[role.rawValue], at: role.rawValue)
            } else if let specialTokensMap, specialTokensMap.root.keys.contains(role.rawValue) {
                token = try specialTokensMap.specialToken(specialTokensMap.root[role.rawValue], at: role.rawValue)
            } else {
                token = role == .pad ? nil : AddedToken("<|endoftext|>", special: true)
            }
            tokenizer[role: role] = token?.content
            specialTokens += token.map { [$0] } ?? []
        }
        for file in [config, specialTokensMap].compactMap({ $0 }) {
            for key in ["additional_special_tokens", "extra_special_tokens"] {
                specialTokens += try file.specialTokenList(file.root[key], at: key)
            }
        }
        tokenizer.addSpecialTokens(specialTokens)
        return tokenizer
    }

    /// The merge rules of a merges.txt file, one "left right" pair per line in rank order after an
    /// optional "#version" header, and the line number of each.
    static func mergesFile(at path: String, text: String) throws -> (merges: [(String, String)], lineNumbers: [Int]) {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true {
            lines.removeLast()
        }
        var merges: [(String, String)] = []
        var lineNumbers: [Int] = []
        merges.reserveCapacity(lines.count)
        lineNumbers.reserveCapacity(lines.count)
        for (index, line) in lines.enumerated() where !line.hasPrefix("#version") {
            let line = line.hasSuffix("\r") ? line.dropLast() : line
            merges.append(try mergeRule(line, location: "\(path) line \(index + 1)"))
            lineNumbers.append(index + 1)
        }
        return (merges, lineNumbers)
    }

    static func mergeRule(_ text: Substring, location: @autoclosure () -> String) throws -> (String, String) {
        guard let space = text.utf8.firstIndex(of: UInt8(ascii: " ")),
              space != text.startIndex, text.index(after: space) != text.endIndex,
              !text[text.index(after: space)...].utf8.contains(UInt8(ascii: " "))
        else {
            throw TokenizerError.malformedMerge(location: location(), text: String(text))
        }
        return (String(text[..<space]), String(text[text.index(after: space)...]))
    }

    /// The files `save(to:)` writes, and the one it removes (`tokenizer.json`, which would shadow them).
    public static let savedFileNames = ["vocab.json", "merges.txt", "added_tokens.json", "special_tokens_map.json", "tokenizer_config.json"]
    public static let fastTokenizerFileName = "tokenizer.json"

    /// Saves the tokenizer in transformers' "slow" layout: `vocab.json`, `merges.txt`,
    /// `added_tokens.json`, `special_tokens_map.json` and `tokenizer_config.json`, each written
    /// atomically. `vocab.json` and `merges.txt` are written the way the Rust `tokenizers` BPE
    /// model saves them (so GPT-2's own files come out byte for byte, apart from the merges header),
    /// the JSON configuration files the way transformers does. transformers'
    /// `AutoTokenizer.from_pretrained` loads the directory with the same ids and special tokens.
    public func save(to directory: URL) throws {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw TokenizerError.writeFailed(path: directory.path, reason: error.localizedDescription)
        }
        let files = [vocabularyJSON(), "#version: 0.2\n" + merges.map { "\($0) \($1)\n" }.joined(), addedTokensJSON().document,
                     specialTokensMapJSON().document, tokenizerConfigJSON().document]
        for (name, contents) in zip(Self.savedFileNames, files) {
            let url = directory.appendingPathComponent(name)
            do {
                try Data(contents.utf8).write(to: url, options: .atomic)
            } catch {
                throw TokenizerError.writeFailed(path: url.path, reason: error.localizedDescription)
            }
        }
        // A tokenizer.json left from an earlier save would take precedence over these files, both
        // here and in transformers.
        let staleTokenizerJSON = directory.appendingPathComponent(Self.fastTokenizerFileName)
        if FileManager.default.fileExists(atPath: staleTokenizerJSON.path) {
            do {
                try FileManager.default.removeItem(at: staleTokenizerJSON)
            } catch {
                throw TokenizerError.writeFailed(path: staleTokenizerJSON.path, reason: error.localizedDescription)
            }
        }
    }

    /// Compact and in id order, like the `tokenizers` BPE model's `vocab.json`.
    private func vocabularyJSON() -> String {
        let entries = vocabulary.sorted { $0.value < $1.value }.map { JSONText.quoted($0.key) + ":" + String($0.value) }
        return "{" + entries.joined(separator: ",") + "}"
    }

    /// Added tokens outside the BPE vocabulary, by content, as transformers writes them.
    private func addedTokensJSON() -> JSONText {
        .object(Dictionary(uniqueKeysWithValues: addedTokens.filter { vocabulary[$0.token.content] == nil }
            .map { ($0.token.content, JSONText.integer($0.id)) }))
    }

    private func specialTokensMapJSON() -> JSONText {
        var roles: [String: JSONText] = [:]
        for role in SpecialTokenRole.allCases {
            guard let content = self[role: role] else { continue }
            let token = addedToken(withContent: content) ?? AddedToken(content, special: true)
            roles[role.rawValue] = .object(addedTokenFields(token))
        }
        return .object(roles)
    }

    private func tokenizerConfigJSON() -> JSONText {
        var decoder: [String: JSONText] = [:]
        for (id, token) in addedTokens {
            var fields = addedTokenFields(token)
            fields["special"] = .bool(token.special)
            decoder[String(id)] = .object(fields)
        }
        var config: [String: JSONText] = [
            "add_prefix_space": .bool(false),
            "added_tokens_decoder": .object(decoder),
            "clean_up_tokenization_spaces": .bool(false),
            "errors": .string("replace"),
            "tokenizer_class": .string("GPT2Tokenizer"),
        ]
        // An absent role would load as GPT2Tokenizer's default, so unset roles are written as null.
        for role in SpecialTokenRole.allCases {
            config[role.rawValue] = self[role: role].map(JSONText.string) ?? .null
        }
        return .object(config)
    }

    private func addedTokenFields(_ token: AddedToken) -> [String: JSONText] {
        ["content": .string(token.content), "lstrip": .bool(token.lstrip), "normalized": .bool(token.normalized),
         "rstrip": .bool(token.rstrip), "single_word": .bool(token.singleWord)]
    }
}

/// Reads the files of a tokenizer directory, turning every failure into a `TokenizerError` that
/// names the file.
private struct TokenizerDirectory {
    let url: URL

    func path(of name: String) -> String {
        url.appendingPathComponent(name).path
    }

    func contains(_ name: String) -> Bool {
        FileManager.default.fileExists(atPath: path(of: name))
    }

    /// Throws unless the directory is one, so that a wrong path is named as itself rather than
    /// as a missing vocab.json inside it.
    func checkIsDirectory() throws {
        var status = stat()
        guard stat(url.path, &status) == 0 else {
            throw errno == ENOENT ? TokenizerError.missingDirectory(path: url.path)
                : TokenizerError.unreadableFile(path: url.path, reason: String(cString: strerror(errno)))
        }
        guard (status.st_mode & S_IFMT) == S_IFDIR else {
            throw TokenizerError.unreadableFile(path: url.path, reason: "it is a file, not a tokenizer directory")
        }
    }

    /// The bytes of a file, read with the system's calls so that a failure is said plainly (a
    /// directory, no permission) rather than as one of Foundation's error codes.
    func data(_ name: String) throws -> Data {
        let path = path(of: name)
        func unreadable(_ code: Int32) -> TokenizerError {
            code == ENOENT ? .missingFile(path: path) : .unreadableFile(path: path, reason: String(cString: strerror(code)))
        }
        var status = stat()
        guard stat(path, &status) == 0 else { throw unreadable(errno) }
        guard (status.st_mode & S_IFMT) != S_IFDIR else { throw TokenizerError.unreadableFile(path: path, reason: "it is a directory") }
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw unreadable(errno) }
        defer { close(descriptor) }
        var bytes = Data()
        var block = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let received = block.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if received == 0 { return bytes }
            if received < 0 {
                guard errno == EINTR else { throw unreadable(errno) }
                continue
            }
            bytes.append(contentsOf: block[..<received])
        }
    }

    func text(_ name: String) throws -> String {
        guard let text = String(data: try data(name), encoding: .utf8) else {
            throw TokenizerError.unreadableFile(path: path(of: name), reason: "not UTF-8 text")
        }
        return text
    }

    func jsonFile(_ name: String) throws -> JSONFile {
        let path = path(of: name)
        guard let root = try jsonObject(data(name), path: path) as? [String: Any] else {
            throw TokenizerError.malformedJSON(path: path, reason: "the top level is not an object")
        }
        return JSONFile(path: path, root: root)
    }

    private func jsonObject(_ data: Data, path: String) throws -> Any {
        do {
            return try JSONSerialization.jsonObject(with: data)
        } catch {
            let debugDescription = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String
            let reason = debugDescription ?? error.localizedDescription
            throw TokenizerError.malformedJSON(path: path, reason: reason)
        }
    }

    /// A JSON object of token ids by token, like vocab.json.
    func tokenIDs(_ name: String) throws -> [String: Int] {
        do {
            return try TokenIDsJSON.parse(Array(data(name)))
        } catch let error as TokenIDsJSON.SyntaxError {
            throw TokenizerError.malformedJSON(path: path(of: name), reason: error.message)
        }
    }

    func optionalJSONFile(_ name: String) throws -> JSONFile? {
        contains(name) ? try jsonFile(name) : nil
    }
}

/// A parsed JSON file with typed accessors whose errors name the file and the key at fault.
private struct JSONFile {
    let path: String
    let root: [String: Any]

    private func wrongType(_ key: String, _ expected: String) -> TokenizerError {
        .malformedJSON(path: path, reason: "\(key) is not \(expected)")
    }

    func object(_ value: Any?, at key: String) throws -> [String: Any] {
        guard let object = value as? [String: Any] else { throw wrongType(key, "an object") }
        return object
    }

    func string(_ value: Any?, at key: String) throws -> String {
        guard let string = value as? String else { throw wrongType(key, "a string") }
        return string
    }

    /// nil when the key is absent.
    func bool(_ value: Any?, at key: String) throws -> Bool? {
        guard let value else { return nil }
        guard let bool = value as? Bool else { throw wrongType(key, "true or false") }
        return bool
    }

    func integer(_ value: Any?, at key: String) throws -> Int {
        guard let integer = value as? Int else { throw wrongType(key, "an integer") }
        return integer
    }

    func integerObject(_ value: Any?, at key: String) throws -> [String: Int] {
        var result: [String: Int] = [:]
        for (name, value) in try object(value, at: key) {
            result[name] = try integer(value, at: "the value of \"\(name)\"")
        }
        return result
    }

    /// An AddedToken as transformers and tokenizers write it: `content` and optional flags.
    func addedToken(_ value: Any?, at key: String, special defaultSpecial: Bool) throws -> AddedToken {
        let fields = try object(value, at: key)
        let special = try bool(fields["special"], at: "\(key).special") ?? defaultSpecial
        return AddedToken(try string(fields["content"], at: "\(key).content"),
                          special: special,
                          lstrip: try bool(fields["lstrip"], at: "\(key).lstrip") ?? false,
                          rstrip: try bool(fields["rstrip"], at: "\(key).rstrip") ?? false,
                          singleWord: try bool(fields["single_word"], at: "\(key).single_word") ?? false,
                          normalized: try bool(fields["normalized"], at: "\(key).normalized"))
    }

    /// A special token written as a string or as an AddedToken object; nil for JSON null.
    func specialToken(_ value: Any?, at key: String) throws -> AddedToken? {
        switch value {
        case is NSNull: return nil
        case let content as String: return AddedToken(content, special: true)
        default: return try addedToken(value, at: key, special: true)
        }
    }

    /// Special tokens listed as an array, or as the values of an object (transformers 5's named
    /// `extra_special_tokens`); none when the key is absent.
    func specialTokenList(_ value: Any?, at key: String) throws -> [AddedToken] {
        switch value {
        case nil, is NSNull: return []
        case let list as [Any]:
            return try list.enumerated().compactMap { try specialToken($1, at: "\(key)[\($0)]") }
        case let named as [String: Any]:
            return try named.sorted { $0.key < $1.key }.compactMap { try specialToken($1, at: "\(key).\($0)") }
        default:
            throw wrongType(key, "a list")
        }
    }

    /// tokenizer_config.json's `added_tokens_decoder`: AddedToken objects keyed by id.
    func addedTokensDecoder(_ value: Any) throws -> [(token: AddedToken, id: Int)] {
        try object(value, at: "added_tokens_decoder").map { key, fields in
            guard let id = Int(key) else { throw wrongType("added_tokens_decoder key \"\(key)\"", "an id") }
            return (try addedToken(fields, at: "added_tokens_decoder.\(key)", special: false), id)
        }.sorted { $0.id < $1.id }
    }

    /// A `tokenizers` tokenizer.json holding a GPT-2 style byte-level BPE, and its added tokens.
    func tokenizerJSON() throws -> (GPT2Tokenizer, [(token: AddedToken, id: Int)]) {
        let model = try object(root["model"], at: "model")
        guard try string(model["type"], at: "model.type") == "BPE" else {
            throw TokenizerError.unsupported(source: path, reason: "model.type is not BPE")
        }
        if let normalizer = root["normalizer"], !(normalizer is NSNull) {
            throw TokenizerError.unsupported(source: path, reason: "it has a normalizer")
        }
        let preTokenizer = try object(root["pre_tokenizer"], at: "pre_tokenizer")
        guard try string(preTokenizer["type"], at: "pre_tokenizer.type") == "ByteLevel",
              try bool(preTokenizer["add_prefix_space"], at: "pre_tokenizer.add_prefix_space") == false,
              try bool(preTokenizer["use_regex"], at: "pre_tokenizer.use_regex") ?? true
        else {
            throw TokenizerError.unsupported(
                source: path, reason: "pre_tokenizer is not ByteLevel with the GPT-2 regex and no prefix space")
        }
        if let dropout = model["dropout"], !(dropout is NSNull) {
            throw TokenizerError.unsupported(source: path, reason: "model.dropout is set")
        }
        if try bool(model["ignore_merges"], at: "model.ignore_merges") == true {
            throw TokenizerError.unsupported(source: path, reason: "model.ignore_merges is true")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let affix = model[key], !(affix is NSNull), try string(affix, at: "model.\(key)") != "" {
                throw TokenizerError.unsupported(source: path, reason: "model.\(key) is set")
            }
        }
        let vocabulary = try integerObject(model["vocab"], at: "model.vocab")
        guard let mergeEntries = model["merges"] as? [Any] else { throw wrongType("model.merges", "a list") }
        func location(_ index: Int) -> String { "\(path) model.merges[\(index)]" }
        let merges = try mergeEntries.enumerated().map { index, entry in
            switch entry {
            case let text as String:
                return try GPT2Tokenizer.mergeRule(Substring(text), location: location(index))
            case let pair as [String] where pair.count == 2:
                return (pair[0], pair[1])
            default:
                throw TokenizerError.malformedMerge(location: location(index), text: "\(entry)")
            }
        }
        let tokenizer = try GPT2Tokenizer(vocabulary: vocabulary, vocabularySource: path, merges: merges,
                                          mergeLocation: location)
        let addedTokens = try (root["added_tokens"] as? [Any] ?? []).enumerated().map { index, entry in
            let key = "added_tokens[\(index)]"
            return (token: try addedToken(entry, at: key, special: false),
                    id: try integer(object(entry, at: key)["id"], at: "\(key).id"))
        }
        return (tokenizer, addedTokens)
    }
}
