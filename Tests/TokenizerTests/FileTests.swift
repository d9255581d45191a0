import Foundation
import Testing
import TestSupport
@testable import Tokenizer

@Suite struct FileTests {
    @Test func saveThenLoadKeepsIdsAndSpecialTokens() throws {
        let original = try TestData.recipe()
        original.addTokens([AddedToken("<mask>", special: true, lstrip: true), AddedToken("xyzzy", singleWord: true)])
        let directory = try TestPaths.temporaryDirectory("tokenizer")
        defer { try? FileManager.default.removeItem(at: directory) }
        // A tokenizer.json from an earlier save would shadow the saved files, so saving removes it.
        let staleTokenizerJSON = directory.appendingPathComponent("tokenizer.json")
        try Data("{}".utf8).write(to: staleTokenizerJSON)
        try original.save(to: directory)
        #expect(!FileManager.default.fileExists(atPath: staleTokenizerJSON.path))

        let loaded = try GPT2Tokenizer.load(directory: directory)
        #expect(loaded.count == original.count)
        #expect(loaded.bosToken == original.bosToken)
        #expect(loaded.eosToken == original.eosToken)
        #expect(loaded.padToken == original.padToken)
        #expect(loaded.unkToken == original.unkToken)
        #expect(loaded.addedTokens.map(\.id) == original.addedTokens.map(\.id))
        #expect(loaded.addedTokens.map(\.token) == original.addedTokens.map(\.token))
        let fixture = try HFFixture.load()
        for testCase in fixture.encode {
            #expect(loaded.encode(testCase.text) == original.encode(testCase.text))
        }
    }

    @Test func savedVocabularyIsByteForByteTheOriginal() throws {
        let directory = try TestPaths.temporaryDirectory("tokenizer")
        defer { try? FileManager.default.removeItem(at: directory) }
        try TestData.gpt2().save(to: directory)
        let saved = try Data(contentsOf: directory.appendingPathComponent("vocab.json"))
        #expect(saved == (try Data(contentsOf: TestData.gpt2Directory.appendingPathComponent("vocab.json"))))
        let savedMerges = try String(contentsOf: directory.appendingPathComponent("merges.txt"), encoding: .utf8)
        let originalMerges = try String(contentsOf: TestData.gpt2Directory.appendingPathComponent("merges.txt"),
                                        encoding: .utf8)
        #expect(savedMerges.split(separator: "\n").dropFirst() == originalMerges.split(separator: "\n").dropFirst())
    }

    @Test func unsetRolesStayUnsetAfterSaving() throws {
        let tokenizer = try TestData.gpt2()
        tokenizer.bosToken = nil
        let directory = try TestPaths.temporaryDirectory("tokenizer")
        defer { try? FileManager.default.removeItem(at: directory) }
        try tokenizer.save(to: directory)
        let loaded = try GPT2Tokenizer.load(directory: directory)
        #expect(loaded.bosToken == nil)
        #expect(loaded.eosToken == "<|endoftext|>")
    }

    @Test func loadsTokenizerJSON() throws {
        // The real vocabulary and merges in tokenizers' single-file layout, with one added token.
        let vocabulary = try JSONSerialization.jsonObject(
            with: Data(contentsOf: TestData.gpt2Directory.appendingPathComponent("vocab.json")))
        let mergesURL = TestData.gpt2Directory.appendingPathComponent("merges.txt")
        let merges = try String(contentsOf: mergesURL, encoding: .utf8)
            .split(separator: "\n").dropFirst().map { $0.split(separator: " ").map(String.init) }
        let document: [String: Any] = [
            "version": "1.0",
            "added_tokens": [["id": 50_256, "content": "<|endoftext|>", "single_word": false, "lstrip": false,
                              "rstrip": false, "normalized": false, "special": true]],
            "normalizer": NSNull(),
            "pre_tokenizer": ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true],
            "model": ["type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": "",
                      "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                      "vocab": vocabulary, "merges": merges],
        ]
        let directory = try TestPaths.temporaryDirectory("tokenizer")
        defer { try? FileManager.default.removeItem(at: directory) }
        try JSONSerialization.data(withJSONObject: document)
            .write(to: directory.appendingPathComponent("tokenizer.json"))
        try Data(#"{"eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}"#.utf8)
            .write(to: directory.appendingPathComponent("tokenizer_config.json"))

        let loaded = try GPT2Tokenizer.load(directory: directory)
        let reference = try TestData.gpt2()
        #expect(loaded.count == 50_257)
        #expect(loaded.padTokenID == 50_256)
        #expect(loaded.modelDigest == reference.modelDigest, "the same vocabulary and merges in the other layout")
        for testCase in try HFFixture.load().encode where testCase.setting == "plain" {
            #expect(loaded.encode(testCase.text) == reference.encode(testCase.text))
        }
    }

    // MARK: Bad input

    /// Writes the given files into a fresh directory and returns the error that loading it throws.
    private func loadError(_ files: [String: String]) throws -> (TokenizerError, URL) {
        let directory = try TestPaths.temporaryDirectory("tokenizer")
        for (name, contents) in files {
            try Data(contents.utf8).write(to: directory.appendingPathComponent(name))
        }
        let error = try #require(throws: TokenizerError.self) { try GPT2Tokenizer.load(directory: directory) }
        try FileManager.default.removeItem(at: directory)
        return (error, directory)
    }

    private let tinyVocabulary = #"{"a": 0, "b": 1, "ab": 2, "<|endoftext|>": 3}"#

    @Test func missingVocabulary() throws {
        let (error, directory) = try loadError(["merges.txt": "#version: 0.2\na b\n"])
        #expect(error == .missingFile(path: directory.appendingPathComponent("vocab.json").path))
        #expect(error.description.hasSuffix("/vocab.json"))
    }

    @Test func missingMerges() throws {
        let (error, _) = try loadError(["vocab.json": tinyVocabulary])
        #expect(error.description.hasPrefix("missing file") && error.description.hasSuffix("/merges.txt"))
    }

    @Test func aFileThatIsADirectoryIsNamedAsOne() throws {
        for name in ["vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "added_tokens.json"] {
            let directory = try TestPaths.temporaryDirectory("tokenizer")
            defer { try? FileManager.default.removeItem(at: directory) }
            try Data(tinyVocabulary.utf8).write(to: directory.appendingPathComponent("vocab.json"))
            try Data("a b\n".utf8).write(to: directory.appendingPathComponent("merges.txt"))
            let path = directory.appendingPathComponent(name)
            try? FileManager.default.removeItem(at: path)
            try FileManager.default.createDirectory(at: path, withIntermediateDirectories: false)
            let error = try #require(throws: TokenizerError.self) { try GPT2Tokenizer.load(directory: directory) }
            #expect(error == .unreadableFile(path: path.path, reason: "it is a directory"))
            #expect(error.description == "cannot read \(path.path): it is a directory")
        }
    }

    @Test func aTokenizerDirectoryThatIsNoDirectoryIsNamed() throws {
        let parent = try TestPaths.temporaryDirectory("tokenizer")
        defer { try? FileManager.default.removeItem(at: parent) }
        let missing = parent.appendingPathComponent("missing")
        #expect(throws: TokenizerError.missingDirectory(path: missing.path)) { try GPT2Tokenizer.load(directory: missing) }
        let file = parent.appendingPathComponent("vocab.json")
        try Data(tinyVocabulary.utf8).write(to: file)
        #expect(throws: TokenizerError.unreadableFile(path: file.path, reason: "it is a file, not a tokenizer directory")) {
            try GPT2Tokenizer.load(directory: file)
        }
    }

    @Test func malformedVocabularyJSON() throws {
        let (error, directory) = try loadError(["vocab.json": #"{"a": 0, "b": "#, "merges.txt": ""])
        guard case .malformedJSON(let path, _) = error else {
            Issue.record("unexpected \(error)")
            return
        }
        #expect(path == directory.appendingPathComponent("vocab.json").path)
        #expect(error.description.contains("vocab.json"))
    }

    @Test func vocabularyValueThatIsNotAnId() throws {
        let (error, _) = try loadError(["vocab.json": #"{"a": "zero"}"#, "merges.txt": ""])
        #expect(error.description.contains("vocab.json") && error.description.contains("line 1 column 7"))
    }

    @Test func mergesLineThatIsNotTwoTokens() throws {
        let (error, directory) = try loadError([
            "vocab.json": tinyVocabulary, "merges.txt": "#version: 0.2\na b\na b c\n",
        ])
        #expect(error == .malformedMerge(location: directory.appendingPathComponent("merges.txt").path + " line 3",
                                         text: "a b c"))
        #expect(error.description.contains("merges.txt line 3"))
    }

    @Test func mergesWithAnUnknownToken() throws {
        let (error, directory) = try loadError(["vocab.json": tinyVocabulary, "merges.txt": "#version: 0.2\na z\n"])
        #expect(error == .unknownMergeToken(location: directory.appendingPathComponent("merges.txt").path + " line 2",
                                            token: "z"))
        #expect(error.description.contains("merges.txt line 2") && error.description.contains("\"z\""))
    }

    @Test func mergeWhoseResultIsNotInTheVocabulary() throws {
        let (error, _) = try loadError(["vocab.json": tinyVocabulary, "merges.txt": "#version: 0.2\nb a\n"])
        #expect(error.description.contains("merges.txt line 2") && error.description.contains("\"ba\""))
    }

    @Test func addedTokenWithAConflictingId() throws {
        let (error, _) = try loadError([
            "vocab.json": tinyVocabulary, "merges.txt": "a b\n", "added_tokens.json": #"{"<x>": 2}"#,
        ])
        #expect(error.description.contains("added_tokens.json") && error.description.contains("\"ab\""))
    }

    @Test func malformedAddedTokensDecoder() throws {
        let (error, _) = try loadError([
            "vocab.json": tinyVocabulary, "merges.txt": "a b\n",
            "tokenizer_config.json": #"{"added_tokens_decoder": {"4": {"special": true}}}"#,
        ])
        #expect(error.description.contains("tokenizer_config.json")
                    && error.description.contains("added_tokens_decoder.4.content"))
    }

    @Test func inMemoryMergesErrorsNameTheEntry() throws {
        let error = try #require(throws: TokenizerError.self) {
            try GPT2Tokenizer(vocabulary: ["a": 0, "b": 1, "ab": 2], merges: [("a", "b"), ("a", "c")])
        }
        #expect(error == .unknownMergeToken(location: "merges[1]", token: "c"))
    }

    @Test func tinyInMemoryModel() throws {
        let tokenizer = try GPT2Tokenizer(vocabulary: ["a": 0, "b": 1, "ab": 2, "Ġ": 3, "Ġab": 4],
                                          merges: [("a", "b"), ("Ġ", "ab")])
        #expect(tokenizer.encode("ab ab ba") == [2, 4, 3, 1, 0])
        #expect(tokenizer.bosToken == nil)
        #expect(try tokenizer.decode([2, 4]) == "ab ab")
    }
}
