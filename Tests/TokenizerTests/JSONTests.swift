import Testing
@testable import Tokenizer

@Suite struct JSONTests {
    @Test func tokenIDsParserReadsEscapesAndWhitespace() throws {
        let text = #"{ "a\n\"\\\/" : 1 ,"\u0120x": -2, "\ud83d\ude00" :3,"é":4 }"#
        let ids = try TokenIDsJSON.parse(Array(text.utf8))
        #expect(ids == ["a\n\"\\/": 1, "Ġx": -2, "😀": 3, "é": 4])
        #expect(try TokenIDsJSON.parse(Array("{}".utf8)).isEmpty)
    }

    @Test(arguments: [
        (#"{"a": 1,"#, "line 1 column 9"),
        ("{\n  \"a\": 1,\n  \"b\": x\n}", "line 3 column 8"),
        (#"{"a": 1} x"#, "line 1 column 10"),
        (#"{"\ud800": 1}"#, "unpaired surrogate"),
        (#"{"\q": 1}"#, "invalid escape"),
        ("[1]", "line 1 column 1"),
    ])
    func tokenIDsParserLocatesErrors(text: String, expected: String) {
        #expect {
            try TokenIDsJSON.parse(Array(text.utf8))
        } throws: { error in
            (error as? TokenIDsJSON.SyntaxError)?.message.contains(expected) == true
        }
    }

    @Test func writerFollowsPythonJSONDumps() {
        let value = JSONText.object([
            "b": .object(["z": .null, "a": .bool(true)]),
            "a": .string("quote\" backslash\\ newline\n tab\t bell\u{07} é"),
            "c": .integer(-3),
            "d": .object([:]),
        ])
        #expect(value.document == """
            {
              "a": "quote\\" backslash\\\\ newline\\n tab\\t bell\\u0007 é",
              "b": {
                "a": true,
                "z": null
              },
              "c": -3,
              "d": {}
            }

            """)
    }
}
