import Testing
@testable import Tokenizer

/// Token for token agreement with Hugging Face's GPT2TokenizerFast, on the fixture's sampled lines
/// and hand-written hard cases.
@Suite struct ParityTests {
    let fixture: HFFixture

    init() throws {
        fixture = try HFFixture.load()
    }

    @Test(arguments: ["plain", "recipe", "added_flags"])
    func encodeMatchesHuggingFace(setting: String) throws {
        let tokenizer = try fixture.tokenizer(for: setting)
        let cases = fixture.encode.filter { $0.setting == setting }
        #expect(cases.count >= 100)
        for testCase in cases {
            #expect(tokenizer.encode(testCase.text) == testCase.ids,
                    "\(testCase.source): \(String(reflecting: testCase.text))")
        }
    }

    @Test func decodeMatchesHuggingFace() throws {
        var tokenizers: [String: GPT2Tokenizer] = [:]
        for testCase in fixture.decode {
            if tokenizers[testCase.setting] == nil {
                tokenizers[testCase.setting] = try fixture.tokenizer(for: testCase.setting)
            }
            let tokenizer = try #require(tokenizers[testCase.setting])
            let text = try tokenizer.decode(testCase.ids, skipSpecialTokens: testCase.skipSpecialTokens)
            #expect(text == testCase.text, "\(testCase.note)")
        }
    }

    @Test func decodingEncodedFixtureTextGivesItBack() throws {
        let tokenizer = try fixture.tokenizer(for: "plain")
        for testCase in fixture.encode where testCase.setting == "plain" {
            #expect(try tokenizer.decode(testCase.ids) == testCase.text)
        }
    }

    @Test func knownSentence() throws {
        #expect(try TestData.gpt2().encode("Hello, my dog is cute") == [15496, 11, 616, 3290, 318, 13779])
    }
}
