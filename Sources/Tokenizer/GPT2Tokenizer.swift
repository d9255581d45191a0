import Foundation

/// GPT-2's byte-level BPE tokenizer, giving the same ids as Hugging Face's `GPT2TokenizerFast`.
///
/// Encoding splits the text around added tokens, pre-tokenizes each stretch in between with
/// GPT-2's regex, maps every byte to its byte-level character and merges by rank. It works on
/// UTF-8 bytes and token ids throughout and caches the tokens of each distinct piece.
///
/// An instance is not thread-safe (encoding updates the cache): give each thread its own `copy()`.
public final class GPT2Tokenizer {
    /// The largest token id plus one that this implementation accepts, to keep id-indexed tables small.
    static let idLimit = 1 << 24

    /// The BPE vocabulary, without added tokens.
    let vocabulary: [String: Int]
    /// The BPE vocabulary by id.
    private let vocabularyTokens: [String?]
    /// The merge rules in rank order.
    let merges: [(String, String)]
    /// Identifies the vocabulary and the merges: a 64-bit FNV-1a hash, in hex, of every token in id
    /// order and every merge in rank order. Tokenizers with the same digest and the same added
    /// tokens give the same ids; how the files spell them (merges.txt's header, vocab.json's
    /// layout, tokenizer.json or the pair of files) does not change it, so a tokenizer saved
    /// with a run and read back keeps its digest.
    public let modelDigest: String
    private var pieceEncoder: PieceEncoder
    private var addedVocabulary = AddedVocabulary()
    private var tokenDecoder = TokenDecoder()

    public var bosToken: String?
    public var eosToken: String?
    public var padToken: String?
    public var unkToken: String?

    /// A bare BPE model: no added tokens and no special-token roles (`load(directory:)` gives the
    /// GPT-2 defaults). `merges` are in rank order, each joining two vocabulary tokens into a third.
    public convenience init(vocabulary: [String: Int], merges: [(String, String)]) throws {
        try self.init(vocabulary: vocabulary, vocabularySource: "vocabulary", merges: merges,
                      mergeLocation: { "merges[\($0)]" })
    }

    /// `mergeLocation` names where the merge at an index came from, for error messages.
    init(vocabulary: [String: Int], vocabularySource: String, merges: [(String, String)],
         mergeLocation: (Int) -> String) throws {
        if let (token, id) = vocabulary.first(where: { !(0..<Self.idLimit).contains($0.value) }) {
            throw TokenizerError.invalidVocabulary(
                source: vocabularySource, reason: "id \(id) of \"\(token)\" is outside 0..<\(Self.idLimit)")
        }
        var vocabularyTokens = [String?](repeating: nil, count: (vocabulary.values.max() ?? -1) + 1)
        for (token, id) in vocabulary {
            if let other = vocabularyTokens[id] {
                throw TokenizerError.invalidVocabulary(
                    source: vocabularySource, reason: "\"\(other)\" and \"\(token)\" have the same id \(id)")
            }
            vocabularyTokens[id] = token
        }
        var mergeTable = MergeTable(minimumCapacity: merges.count)
        for (rank, (left, right)) in merges.enumerated() {
            func id(_ token: String) throws -> UInt32 {
                guard let id = vocabulary[token] else {
                    throw TokenizerError.unknownMergeToken(location: mergeLocation(rank), token: token)
                }
                return UInt32(id)
            }
            mergeTable.insert(left: try id(left), right: try id(right),
                              MergeTable.Merge(rank: UInt32(rank), merged: try id(left + right)))
        }
        let byteTokenIDs = ByteLevel.characterForByte.map { character in
            vocabulary[String(character)].map(UInt32.init) ?? BytePairModel.missingToken
        }
        self.vocabulary = vocabulary
        self.vocabularyTokens = vocabularyTokens
        self.merges = merges
        modelDigest = Self.digest(vocabularyTokens: vocabularyTokens, merges: merges)
        pieceEncoder = PieceEncoder(model: BytePairModel(byteTokenIDs: byteTokenIDs, merges: mergeTable))
        for (id, token) in vocabularyTokens.enumerated() {
            if let token {
                tokenDecoder.set(id: id, token: token, special: false)
            }
        }
    }

    /// An independent tokenizer with the same vocabulary, added tokens and roles, for another
    /// thread. Cheap: the tables are shared copy-on-write rather than rebuilt.
    public func copy() -> GPT2Tokenizer {
        GPT2Tokenizer(copying: self)
    }

    private init(copying other: GPT2Tokenizer) {
        vocabulary = other.vocabulary
        vocabularyTokens = other.vocabularyTokens
        merges = other.merges
        modelDigest = other.modelDigest
        pieceEncoder = other.pieceEncoder
        addedVocabulary = other.addedVocabulary
        tokenDecoder = other.tokenDecoder
        bosToken = other.bosToken
        eosToken = other.eosToken
        padToken = other.padToken
        unkToken = other.unkToken
    }

    /// See `modelDigest`. 0xFF, which UTF-8 never uses, ends each token and each half of a merge,
    /// and 0xFE stands for an id without a token, so that no two tables give the same bytes.
    private static func digest(vocabularyTokens: [String?], merges: [(String, String)]) -> String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        func combine(_ bytes: some Sequence<UInt8>) {
            for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        }
        for token in vocabularyTokens {
            if let token { combine(token.utf8) }
            combine(CollectionOfOne(token == nil ? 0xFE : 0xFF))
        }
        combine(CollectionOfOne(0xFE))
        for (left, right) in merges {
            combine(left.utf8)
            combine(CollectionOfOne(0xFF))
            combine(right.utf8)
            combine(CollectionOfOne(0xFF))
        }
        return String(hash, radix: 16)
    }

    // MARK: Vocabulary

    /// The BPE model, for tests of the merge algorithms.
    var bytePairModel: BytePairModel { pieceEncoder.model }

    /// The number of distinct tokens, BPE vocabulary and added tokens together (`len(tokenizer)`).
    public var count: Int {
        vocabulary.count + addedVocabulary.idsByContent.keys.count(where: { vocabulary[$0] == nil })
    }

    public func id(for token: String) -> Int? {
        addedVocabulary.idsByContent[token] ?? vocabulary[token]
    }

    public func token(for id: Int) -> String? {
        if let added = addedVocabulary.tokensByID[id] {
            return added.content
        }
        return vocabularyTokens.indices.contains(id) ? vocabularyTokens[id] : nil
    }

    /// The added tokens (including special tokens that are also in the BPE vocabulary), by id.
    public var addedTokens: [(id: Int, token: AddedToken)] {
        addedVocabulary.tokensByID.sorted { $0.key < $1.key }.map { (id: $0.key, token: $0.value) }
    }

    func addedToken(withContent content: String) -> AddedToken? {
        addedVocabulary.idsByContent[content].flatMap { addedVocabulary.tokensByID[$0] }
    }

    /// The token of a special-token role, like the `bosToken`, `eosToken`, ... properties.
    public subscript(role role: SpecialTokenRole) -> String? {
        get {
            switch role {
            case .bos: bosToken
            case .eos: eosToken
            case .unk: unkToken
            case .pad: padToken
            }
        }
        set {
            switch role {
            case .bos: bosToken = newValue
            case .eos: eosToken = newValue
            case .unk: unkToken = newValue
            case .pad: padToken = newValue
            }
        }
    }

    // The role ids fall back to the unknown token's id for a role token that is not in the
    // vocabulary, as Hugging Face's `convert_tokens_to_ids` does.
    public var bosTokenID: Int? { roleID(bosToken) }
    public var eosTokenID: Int? { roleID(eosToken) }
    public var padTokenID: Int? { roleID(padToken) }

    private func roleID(_ token: String?) -> Int? {
        guard let token else { return nil }
        return id(for: token) ?? unkToken.flatMap(id(for:))
    }

    /// Adds tokens that BPE will never split, like Hugging Face's `add_tokens`: a token already in
    /// the vocabulary keeps its id (and becomes an added token, so it is matched in text first);
    /// a new one gets the next id after the vocabulary and earlier added tokens. Returns the id of
    /// each token; empty strings are skipped, as in Hugging Face.
    @discardableResult
    public func addTokens(_ tokens: [String], special: Bool) -> [Int] {
        addTokens(tokens.map { AddedToken($0, special: special) })
    }

    /// Adds tokens with all of Hugging Face's `AddedToken` options; see `addTokens(_:special:)`.
    @discardableResult
    public func addTokens(_ tokens: [AddedToken]) -> [Int] {
        var ids: [Int] = []
        for token in tokens where !token.content.isEmpty {
            let id = id(for: token.content) ?? nextAddedTokenID
            register(token, id: id)
            ids.append(id)
        }
        addedVocabulary.rebuildSplitter()
        return ids
    }

    /// Adds tokens with the ids a file gives them, checking that the ids fit the vocabulary.
    func addTokens(_ tokens: [(token: AddedToken, id: Int)], source: String) throws {
        for (token, id) in tokens {
            guard !token.content.isEmpty else {
                throw TokenizerError.invalidAddedToken(source: source, reason: "empty token with id \(id)")
            }
            guard id >= 0, id < Self.idLimit else {
                throw TokenizerError.invalidAddedToken(
                    source: source, reason: "id \(id) of \"\(token.content)\" is outside 0..<\(Self.idLimit)")
            }
            if let known = self.id(for: token.content), known != id {
                throw TokenizerError.invalidAddedToken(
                    source: source, reason: "\"\(token.content)\" has id \(id) but is already token \(known)")
            }
            if let other = self.token(for: id), other != token.content {
                throw TokenizerError.invalidAddedToken(
                    source: source, reason: "\"\(token.content)\" has id \(id), which is already \"\(other)\"")
            }
            register(token, id: id)
        }
        addedVocabulary.rebuildSplitter()
    }

    /// Makes each token special, keeping the options of tokens that are already added.
    func addSpecialTokens(_ tokens: [AddedToken]) {
        for token in tokens where !token.content.isEmpty {
            if var existing = addedToken(withContent: token.content) {
                existing.special = true
                register(existing, id: addedVocabulary.idsByContent[token.content]!)
            } else {
                register(token, id: id(for: token.content) ?? nextAddedTokenID)
            }
        }
        addedVocabulary.rebuildSplitter()
    }

    private var nextAddedTokenID: Int {
        max(vocabulary.count, (addedVocabulary.tokensByID.keys.max() ?? -1) + 1)
    }

    private func register(_ token: AddedToken, id: Int) {
        addedVocabulary.register(token, id: id)
        tokenDecoder.set(id: id, token: token.content, special: addedVocabulary.tokensByID[id]!.special)
    }

    // MARK: Encoding and decoding

    /// The token ids of `text`. No tokens are added around it (GPT-2 adds no BOS or EOS).
    public func encode(_ text: String) -> [Int] {
        var text = text
        return text.withUTF8 { encode(utf8: $0) }
    }

    /// The token ids of valid UTF-8 text.
    private func encode(utf8 text: UnsafeBufferPointer<UInt8>) -> [Int] {
        var ids: [Int] = []
        ids.reserveCapacity(text.count / 3 + 1)
        let splitter = addedVocabulary.splitter
        ScalarClassTable.shared.withLookup { classes in
            splitter.forEachSegment(of: text, classes: classes) { segment in
                switch segment {
                case .addedToken(let id):
                    ids.append(id)
                case .text(let range):
                    let stretch = UnsafeBufferPointer(rebasing: text[range])
                    pieceEncoder.appendTokens(of: stretch, classes: classes, to: &ids)
                }
            }
        }
        return ids
    }

    /// The text of `ids`. Bytes that do not form valid UTF-8 (say, half of an emoji) become U+FFFD,
    /// one per maximal invalid sequence, as in Hugging Face. Unlike Hugging Face, which silently
    /// drops ids it does not know, an unknown id throws `TokenizerError.unknownTokenID`.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) throws -> String {
        try tokenDecoder.decode(ids, skipSpecialTokens: skipSpecialTokens)
    }
}
