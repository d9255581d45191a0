import Testing
@testable import Tokenizer

@Suite struct AddedTokenTests {
    @Test func recipeSpecialTokensGetTheNextIds() throws {
        let tokenizer = try TestData.gpt2()
        #expect(tokenizer.count == 50_257)
        #expect(tokenizer.addTokens(["<|endoftext|>", "<|EOS|>", "<|pad|>"], special: true) == [50_256, 50_257, 50_258])
        #expect(tokenizer.count == 50_259)
        // Adding again changes nothing.
        #expect(tokenizer.addTokens(["<|EOS|>"], special: true) == [50_257])
        #expect(tokenizer.count == 50_259)
        #expect(tokenizer.id(for: "<|pad|>") == 50_258)
        #expect(tokenizer.token(for: 50_257) == "<|EOS|>")
        #expect(tokenizer.token(for: 50_259) == nil)
    }

    @Test func loadingWithRolesMatchesTheRecipe() throws {
        let tokenizer = try TestData.recipe()
        #expect(tokenizer.count == 50_259)
        #expect(tokenizer.bosToken == "<|endoftext|>")
        #expect(tokenizer.eosToken == "<|EOS|>")
        #expect(tokenizer.padToken == "<|pad|>")
        #expect(tokenizer.unkToken == "<|endoftext|>")
        #expect(tokenizer.bosTokenID == 50_256)
        #expect(tokenizer.eosTokenID == 50_257)
        #expect(tokenizer.padTokenID == 50_258)
        #expect(tokenizer.addedTokens.map(\.id) == [50_256, 50_257, 50_258])
        #expect(tokenizer.addedTokens.allSatisfy { $0.token.special && !$0.token.normalized })
    }

    @Test func gpt2DefaultsMakeEndOfTextSpecial() throws {
        let tokenizer = try TestData.gpt2()
        #expect(tokenizer.bosToken == "<|endoftext|>")
        #expect(tokenizer.eosTokenID == 50_256)
        #expect(tokenizer.padToken == nil)
        #expect(tokenizer.padTokenID == nil)
        #expect(tokenizer.encode("hello<|endoftext|>world") == [31_373, 50_256, 6_894])
        #expect(try tokenizer.decode([50_256, 464], skipSpecialTokens: true) == "The")
    }

    @Test func specialTokensAreNeverSplitInsideText() throws {
        let tokenizer = try TestData.recipe()
        let text = "<|endoftext|> An idea <|EOS|><|pad|>x<|EOS|>y<|pad|>"
        let ids = tokenizer.encode(text)
        #expect(ids == [50_256, 1_052, 2_126, 220, 50_257, 50_258, 87, 50_257, 88, 50_258])
        #expect(try tokenizer.decode(ids) == text)
        #expect(try tokenizer.decode(ids, skipSpecialTokens: true) == " An idea xy")
    }

    @Test func roleIDsFallBackToTheUnknownTokenLikeHuggingFace() throws {
        let tokenizer = try TestData.gpt2()
        tokenizer.padToken = "<|not added|>"
        #expect(tokenizer.padTokenID == 50_256)
        tokenizer.unkToken = nil
        #expect(tokenizer.padTokenID == nil)
    }

    @Test func addedTokenThatIsInTheVocabularyKeepsItsIdAndSplitsText() throws {
        let tokenizer = try TestData.gpt2()
        #expect(tokenizer.addTokens(["hello"], special: false) == [31_373])
        #expect(tokenizer.count == 50_257)
        #expect(tokenizer.encode("sayhello world") == [16_706, 31_373, 995])
    }

    @Test func emptyTokensAreSkipped() throws {
        let tokenizer = try TestData.gpt2()
        #expect(tokenizer.addTokens(["", "<a>"], special: false) == [50_257])
    }

    @Test func unknownIdsAreErrorsWhenDecoding() throws {
        let tokenizer = try TestData.gpt2()
        #expect(throws: TokenizerError.unknownTokenID(50_257)) { try tokenizer.decode([1, 50_257]) }
        #expect(throws: TokenizerError.unknownTokenID(-1)) { try tokenizer.decode([-1]) }
    }
}

extension AddedTokenTests {
    @Test func copiesAreIndependent() throws {
        let original = try TestData.gpt2()
        let copy = original.copy()
        copy.addTokens(["<|EOS|>"], special: true)
        copy[role: .eos] = "<|EOS|>"
        #expect(copy.eosTokenID == 50_257)
        #expect(original.eosTokenID == 50_256)
        #expect(original.count == 50_257)
        #expect(original.encode("<|EOS|>") == [27, 91, 36, 2_640, 91, 29])
        #expect(copy.encode("<|EOS|>") == [50_257])
    }

    @Test func roleSubscriptMatchesTheProperties() throws {
        let tokenizer = try TestData.recipe()
        #expect(SpecialTokenRole.allCases.map { tokenizer[role: $0] }
                    == [tokenizer.bosToken, tokenizer.eosToken, tokenizer.unkToken, tokenizer.padToken])
        tokenizer[role: .pad] = nil
        #expect(tokenizer.padToken == nil)
    }
}
