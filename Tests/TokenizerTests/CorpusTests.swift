import Foundation
import Testing
@testable import Tokenizer

/// The token counts of the project's data given in its README, and lossless round trips.
@Suite struct CorpusTests {
    @Test func tinyShakespeareRoundTripsAndHasTheKnownTokenCount() throws {
        let tokenizer = try TestData.gpt2()
        let text = try TestData.text("tinyshakespeare.txt")
        let ids = tokenizer.encode(text)
        #expect(ids.count == 338_025)
        #expect(try tokenizer.decode(ids) == text)
    }

    @Test(arguments: [("ideas.txt", 43_367), ("ideas_long.txt", 204_407)])
    func ideaFilesLineByLine(name: String, expectedTokens: Int) throws {
        let tokenizer = try TestData.gpt2()
        var total = 0
        for line in try TestData.text(name).split(separator: "\n") {
            let ids = tokenizer.encode(String(line))
            total += ids.count
            #expect(try tokenizer.decode(ids) == line)
        }
        #expect(total == expectedTokens)
    }

    @Test func veryLongPieceRoundTrips() throws {
        // One 200 KB pre-token: BPE must stay near-linear on it.
        let tokenizer = try TestData.gpt2()
        let digits = String(repeating: "1234567890", count: 20_000)
        let ids = tokenizer.encode(digits)
        #expect(ids.count < digits.utf8.count)
        #expect(try tokenizer.decode(ids) == digits)
    }

    @Test func repeatedEncodingUsesTheCacheConsistently() throws {
        let tokenizer = try TestData.gpt2()
        let text = try TestData.text("ideas.txt")
        #expect(tokenizer.encode(text) == tokenizer.encode(text))
    }
}
