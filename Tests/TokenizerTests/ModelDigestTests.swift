import Foundation
import Testing
import TestSupport
@testable import Tokenizer

/// `modelDigest` tells vocabularies and merges apart by what they hold, not how the files spell it.
@Suite struct ModelDigestTests {
    /// A directory with GPT-2's files, `vocab.json` and `merges.txt` changed by the closures.
    private func gpt2Directory(vocabulary: (inout [String: Int]) -> Void = { _ in }, merges: (String) -> String = { $0 }) throws -> URL {
        let directory = try TestPaths.temporaryDirectory("tokenizer")
        var tokens = try #require(try JSONSerialization.jsonObject(
            with: Data(contentsOf: TestData.gpt2Directory.appendingPathComponent("vocab.json"))) as? [String: Int])
        vocabulary(&tokens)
        try JSONSerialization.data(withJSONObject: tokens).write(to: directory.appendingPathComponent("vocab.json"))
        let original = try String(contentsOf: TestData.gpt2Directory.appendingPathComponent("merges.txt"), encoding: .utf8)
        try merges(original).write(to: directory.appendingPathComponent("merges.txt"), atomically: true, encoding: .utf8)
        return directory
    }

    private func digest(_ directory: URL) throws -> String {
        defer { try? FileManager.default.removeItem(at: directory) }
        return try GPT2Tokenizer.load(directory: directory).modelDigest
    }

    @Test func theContentsDecideTheDigest() throws {
        let original = try TestData.gpt2().modelDigest
        #expect(try digest(gpt2Directory()) == original, "vocab.json written in another layout")
        #expect(try digest(gpt2Directory(merges: { $0.replacingOccurrences(of: "#version: 0.2", with: "#version: 0.2 (copied)") })) == original,
                "another merges.txt header")
        #expect(try digest(gpt2Directory(merges: { _ in "" })) != original, "no merges")
        #expect(try digest(gpt2Directory(merges: { merges in
            var lines = merges.split(separator: "\n", omittingEmptySubsequences: false)
            lines.swapAt(1, 2)
            return lines.joined(separator: "\n")
        })) != original, "two merges in another order")
        #expect(try digest(gpt2Directory(vocabulary: { tokens in
            (tokens["Ġthe"], tokens["Ġa"]) = (tokens["Ġa"], tokens["Ġthe"])
        })) != original, "two ids swapped")
        let saved = try TestPaths.temporaryDirectory("tokenizer")
        try TestData.recipe().save(to: saved)
        #expect(try digest(saved) == original, "saved with a run and read back; added tokens are not part of it")
    }
}
