import Data
import Foundation
import Testing
import TestSupport

/// Writes `bytes` as a data file, for content that is not valid UTF-8 or starts with a mark.
func writeBytes(_ bytes: [UInt8], _ name: String) throws -> String {
    let path = try TestPaths.temporaryDirectory("data").appendingPathComponent(name).path
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return path
}

let byteOrderMark: [UInt8] = [0xEF, 0xBB, 0xBF]

@Test func aLeadingByteOrderMarkIsNotText() throws {
    let text = try writeBytes(byteOrderMark + Array("first\nsecond\n".utf8), "bom.txt")
    #expect(try DataFile.read(path: text) == .texts(["first", "second"]))
    #expect(try DataFile.lines(path: text) == ["first", "second"])
    let csv = try writeBytes(byteOrderMark + Array("text,id\nan idea,1\n".utf8), "bom.csv")
    #expect(try DataFile.read(path: csv) == .texts(["an idea"]), "the first column is 'text', not '\u{FEFF}text'")
    let records = try writeBytes(byteOrderMark + Array("{\"text\": \"a\"}\n{\"text\": \"b\"}\n".utf8), "bom.jsonl")
    #expect(try DataFile.read(path: records) == .texts(["a", "b"]))
    // Only at the start of the file: elsewhere U+FEFF is a character of the text.
    let inner = try writeBytes(Array("a\n".utf8) + byteOrderMark + Array("b\n".utf8), "inner.txt")
    #expect(try DataFile.read(path: inner) == .texts(["a", "\u{FEFF}b"]))
}

@Test func invalidUTF8IsAnErrorNamingTheLine() throws {
    let text = try writeBytes(Array("good\nbad ".utf8) + [0xFF] + Array(" byte\n".utf8), "latin.txt")
    #expect(throws: DataError(path: text, line: 2, problem: "is not valid UTF-8 text (at byte 5 of the line: 0xFF)")) { try DataFile.read(path: text) }
    #expect(throws: DataError(path: text, line: 2, problem: "is not valid UTF-8 text (at byte 5 of the line: 0xFF)")) { try DataFile.lines(path: text) }
    // A character cut short (the first two bytes of the three of "€").
    let csv = try writeBytes(Array("text\nfine\n\"two\nlines ".utf8) + [0xE2, 0x82] + Array("\"\n".utf8), "cut.csv")
    #expect(throws: DataError(path: csv, line: 4, problem: "is not valid UTF-8 text (at byte 7 of the line: 0xE2)")) { try DataFile.read(path: csv) }
    let records = try writeBytes(Array("{\"text\": \"a\"}\n{\"text\": \"".utf8) + [0xC0, 0xAF] + Array("\"}\n".utf8), "overlong.jsonl")
    #expect(throws: DataError(path: records, line: 2, problem: "is not valid UTF-8 text (at byte 11 of the line: 0xC0)")) { try DataFile.read(path: records) }
}

@Test func csvQuoteErrorsNameTheLineWhereTheQuoteOpened() throws {
    // The quote on line 2 is never closed where it should be: the quote in `"hi"` on line 4 ends
    // the field, which had taken lines 3 and 4 into itself.
    let swallowing = try writeData("text,n\n\"Rockets, but cheaper,1\nTea by drone,2\nSay \"hi\",3\nlast,4\n", "swallow.csv")
    #expect(throws: DataError(path: swallowing, line: 2, problem: "the quoted field that opens here closes on line 4 and has text after its closing quote (a quote inside a quoted field is written \"\")")) {
        try DataFile.read(path: swallowing)
    }
    let sameLine = try writeData("text,n\n\"a\"b,1\n", "same.csv")
    #expect(throws: DataError(path: sameLine, line: 2, problem: "the quoted field that opens here has text after its closing quote (a quote inside a quoted field is written \"\")")) {
        try DataFile.read(path: sameLine)
    }
    // The row starts on line 2; the quote that is never closed opens on line 3.
    let unclosed = try writeData("text,n\n\"two\nlines\",\"never closed\nmore,5\n", "unclosed.csv")
    #expect(throws: DataError(path: unclosed, line: 3, problem: "quoted field is not closed")) { try DataFile.read(path: unclosed) }
    // What RFC 4180 allows still reads: doubled quotes, an empty quoted field, CR LF after a quote.
    let valid = try writeData("n,text\r\n1,\"say \"\"hi\"\"\"\r\n2,\"\"\r\n3,\"end\"\r\n", "valid.csv")
    #expect(try DataFile.read(path: valid, textColumn: "text") == .texts(["say \"hi\"", "end"]))
}

@Test func theSharedCSVStillReadsUnderTheStrictQuoting() throws {
    let path = TestPaths.sharedData.appendingPathComponent("yc_companies.csv").path
    guard case let .texts(texts) = try DataFile.read(path: path, textColumn: "one_liner") else { throw DataError(path: path, problem: "not texts") }
    #expect(texts.count == 5508, "the non-blank one_liners of its 5,706 rows, as Python's csv module reads them")
}

@Test func everyRecordIsReadButOnlyTextsAreExamples() throws {
    let files = [("blank.txt", "a\n\n \t\nb\n", ["a", "", " \t", "b"]),
                 ("blank.csv", "text,n\na,1\n,2\n\"\n\n\",3\nb,4\n", ["a", "", "\n\n", "b"]),
                 ("blank.jsonl", "{\"text\": \"a\"}\n{\"text\": \"\"}\n\n{\"text\": \"\\n\\n\"}\n{\"text\": \"b\"}\n", ["a", "", "\n\n", "b"])]
    for (name, content, expected) in files {
        let path = try writeData(content, name)
        guard case let .texts(records) = try DataFile.open(path: path) else { throw DataError(path: path, problem: "not texts") }
        var all: [String] = []
        while let record = try records.nextRecord() { all.append(record) }
        #expect(all == expected, "\(name)")
        guard case let .texts(examples) = try DataFile.open(path: path) else { throw DataError(path: path, problem: "not texts") }
        var texts: [String] = []
        while let text = try examples.next() { texts.append(text) }
        #expect(texts == ["a", "b"] && examples.blankCount == 2, "\(name)")
    }
}

@Test func preTokenizedValuesThatAreNoTokenIdsAreNamed() throws {
    let cases: [(String, String)] = [
        (#"{"input_ids": [1, 2], "labels": [5, 1000000000000]}"#, "labels[1] is 1000000000000, out of range for a token id (a 32-bit integer)"),
        (#"{"input_ids": [1, -2147483649]}"#, "input_ids[1] is -2147483649, out of range for a token id (a 32-bit integer)"),
        (#"{"input_ids": [1, 2.5]}"#, "input_ids[1] is 2.5, not an integer"),
        (#"{"input_ids": [true, 2]}"#, "input_ids[0] is not an integer"),
        (#"{"input_ids": [1, "2"]}"#, "input_ids[1] is not an integer"),
        (#"{"input_ids": 7}"#, "input_ids is not an array of integers"),
        (#"{"input_ids": []}"#, "input_ids is empty"),
        (#"{"input_ids": [1, 2], "labels": [1]}"#, "labels has 1 values, input_ids 2"),
    ]
    for (record, problem) in cases {
        let path = try writeData("{\"input_ids\": [3]}\n" + record + "\n", "ids.jsonl")
        #expect(throws: DataError(path: path, line: 2, problem: problem)) { try DataFile.read(path: path) }
    }
}

@Test func preTokenizedExamplesComeWithTheirLines() throws {
    let path = try writeData("{\"input_ids\": [1]}\n\n{\"input_ids\": [2, 3], \"labels\": [-100, 3]}\n{\"input_ids\": [4]}\n", "ids.jsonl")
    guard case let .tokenized(examples, lines) = try DataFile.open(path: path) else { throw DataError(path: path, problem: "not tokenized") }
    #expect(examples.map(\.inputIDs) == [[1], [2, 3], [4]] && lines == [1, 3, 4])
}

@Test func idsOutsideTheVocabularyAreFoundWithTheirExample() {
    let examples = [TokenizedExample(inputIDs: [1, 2]), TokenizedExample(inputIDs: []), TokenizedExample(inputIDs: [3, 4], labels: [-100, 4]),
                    TokenizedExample(inputIDs: [5], labels: [50]), TokenizedExample(inputIDs: [60])]
    let storage = TokenStorage(examples: examples)
    #expect(storage.firstIDOutside(vocabularySize: 100) == nil, "-100 is the ignored label, not an id")
    let label = storage.firstIDOutside(vocabularySize: 50)
    #expect(label?.example == 3 && label?.value == 50 && label?.isLabel == true)
    let token = storage.firstIDOutside(vocabularySize: 5)
    #expect(token?.example == 3 && token?.value == 5 && token?.isLabel == false, "example 3's token is reported before its label")
    let negative = TokenStorage(examples: [TokenizedExample(inputIDs: [1]), TokenizedExample(inputIDs: [2, -1])]).firstIDOutside(vocabularySize: 10)
    #expect(negative?.example == 1 && negative?.value == -1)
}

@Test func aDataPathThatIsNoFileSaysWhat() throws {
    let directory = try TestPaths.temporaryDirectory("data")
    #expect(throws: DataError(path: directory.path, problem: "is a directory, expected a data file")) { try DataFile.read(path: directory.path) }
    #expect(throws: DataError(path: directory.path, problem: "is a directory, expected a data file")) {
        try TokenCache.fileName(dataPath: directory.path, settings: "")
    }
    let missing = directory.appendingPathComponent("missing.txt").path
    #expect(throws: DataError(path: missing, problem: "no such file")) { try TokenCache.fileName(dataPath: missing, settings: "") }
    let underAFile = try writeData("x\n", "file.txt") + "/inside.txt"
    #expect(throws: DataError(path: underAFile, problem: "cannot be read: Not a directory")) { try DataFile.read(path: underAFile) }
}
