import Foundation
import Testing
import TestSupport
@testable import Tokenizer

/// The shared data and this target's fixtures.
enum TestData {
    static let dataDirectory = TestPaths.sharedData
    static let gpt2Directory = dataDirectory.appendingPathComponent("gpt2-tokenizer")
    static let fixtureURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/hf_ids.json")

    static func text(_ name: String) throws -> String {
        try String(contentsOf: dataDirectory.appendingPathComponent(name), encoding: .utf8)
    }

    static let recipeRoles: [SpecialTokenRole: String] = [.bos: "<|endoftext|>", .eos: "<|EOS|>", .pad: "<|pad|>"]

    // Loaded once, as loading takes about half a second in a debug build; tests only copy them.
    // Copying reads them from several threads at once, which is safe as nothing mutates them.
    nonisolated(unsafe) private static let loadedGPT2 = Result { try GPT2Tokenizer.load(directory: gpt2Directory) }
    nonisolated(unsafe) private static let loadedRecipe = Result {
        try GPT2Tokenizer.load(directory: gpt2Directory, roles: recipeRoles)
    }

    /// GPT-2 as `GPT2TokenizerFast.from_pretrained(dir)` loads it. Each test gets its own copy, as
    /// tokenizers are not thread-safe and tests run in parallel.
    static func gpt2() throws -> GPT2Tokenizer {
        try loadedGPT2.get().copy()
    }

    /// The fine-tuning recipe's tokenizer: `from_pretrained(dir, bos_token='<|endoftext|>',
    /// eos_token='<|EOS|>', pad_token='<|pad|>')`.
    static func recipe() throws -> GPT2Tokenizer {
        try loadedRecipe.get().copy()
    }

}

/// Tests/TokenizerTests/Fixtures/hf_ids.json, written by scripts/make_tokenizer_fixtures.py.
struct HFFixture: Decodable {
    struct TokenSpec: Decodable {
        let content: String
        let special: Bool
        let lstrip: Bool
        let rstrip: Bool
        let singleWord: Bool
        let normalized: Bool
    }

    /// Special-token roles given to from_pretrained, then tokens added in order.
    struct Setting: Decodable {
        let roles: [String: String]
        let addedTokens: [TokenSpec]
    }

    struct EncodeCase: Decodable {
        let setting: String
        let source: String
        let text: String
        let ids: [Int]
    }

    struct DecodeCase: Decodable {
        let setting: String
        let note: String
        let ids: [Int]
        let skipSpecialTokens: Bool
        let text: String
    }

    let settings: [String: Setting]
    let encode: [EncodeCase]
    let decode: [DecodeCase]

    static func load() throws -> HFFixture {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(HFFixture.self, from: Data(contentsOf: TestData.fixtureURL))
    }

    func tokenizer(for settingName: String) throws -> GPT2Tokenizer {
        let setting = try #require(settings[settingName])
        let roles = Dictionary(uniqueKeysWithValues: try setting.roles.map { key, token in
            (try #require(SpecialTokenRole(rawValue: key)), token)
        })
        let tokenizer = try roles.isEmpty ? TestData.gpt2()
            : roles == TestData.recipeRoles ? TestData.recipe()
            : GPT2Tokenizer.load(directory: TestData.gpt2Directory, roles: roles)
        tokenizer.addTokens(setting.addedTokens.map {
            AddedToken($0.content, special: $0.special, lstrip: $0.lstrip, rstrip: $0.rstrip,
                       singleWord: $0.singleWord, normalized: $0.normalized)
        })
        return tokenizer
    }
}
