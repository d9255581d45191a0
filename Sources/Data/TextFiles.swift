import Foundation

/// A problem with a data file, as one line naming the file (and line, where there is one).
public struct DataError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let line: Int?
    public let problem: String

    public init(path: String, line: Int? = nil, problem: String) {
        self.path = path
        self.line = line
        self.problem = problem
    }

    public var description: String { line.map { "\(path):\($0): \(problem)" } ?? "\(path): \(problem)" }
}

/// An example already turned into ids: what a pre-tokenized `.jsonl` holds, and what texts become.
public struct TokenizedExample: Sendable, Equatable, Codable {
    public var inputIDs: [Int32]
    /// Explicit labels (same length as inputIDs, -100 = not counted); nil means "the input ids".
    public var labels: [Int32]?

    public init(inputIDs: [Int32], labels: [Int32]? = nil) {
        self.inputIDs = inputIDs
        self.labels = labels
    }
}

/// What a data file holds: texts to tokenize, or examples that are ids already.
public enum DataFileContents: Sendable, Equatable {
    case texts([String])
    case tokenized([TokenizedExample])
}

/// A data file opened for reading: its texts come one at a time, so that a corpus need not fit in
/// memory; pre-tokenized records, which are not cached, are read at once, with the line each came
/// from (so that a check of their ids can name it).
public enum OpenedDataFile {
    case texts(TextReader)
    case tokenized([TokenizedExample], lines: [Int])
}

public enum DataFile {
    /// Opens `.txt` (one example per line, blank lines skipped), `.csv` (the `textColumn` of an
    /// RFC 4180 table with a header row) or `.jsonl` (each record's `textField`, or its
    /// `input_ids` and optional `labels` for pre-tokenized data).
    public static func open(path: String, textColumn: String = "text", textField: String = "text") throws -> OpenedDataFile {
        let lines = try LineReader(path: path)
        switch URL(fileURLWithPath: path).pathExtension.lowercased() {
        case "txt": return .texts(TextReader(lines, format: .plain))
        case "csv":
            let rows = try CSVRows(lines)
            guard let header = try rows.next() else { throw DataError(path: path, problem: "holds no examples") }
            guard let index = header.fields.firstIndex(of: textColumn) else {
                throw DataError(path: path, problem: "no column '\(textColumn)' (columns: \(header.fields.joined(separator: ", ")))")
            }
            return .texts(TextReader(lines, format: .csv(rows, column: index, fieldCount: header.fields.count)))
        case "jsonl":
            guard let first = try nextJSONObject(lines) else { throw DataError(path: path, problem: "holds no examples") }
            // Texts are read again from the start, so that the first one comes too.
            guard first["input_ids"] != nil else { return .texts(TextReader(try LineReader(path: path), format: .jsonl(field: textField))) }
            var examples = [try tokenizedExample(first, lines)], lineNumbers = [lines.lineNumber]
            while let object = try nextJSONObject(lines) {
                examples.append(try tokenizedExample(object, lines))
                lineNumbers.append(lines.lineNumber)
            }
            return .tokenized(examples, lines: lineNumbers)
        default: throw DataError(path: path, problem: "unknown data format (use .txt, .csv or .jsonl)")
        }
    }

    /// All of a data file at once (see `open`).
    public static func read(path: String, textColumn: String = "text", textField: String = "text") throws -> DataFileContents {
        switch try open(path: path, textColumn: textColumn, textField: textField) {
        case let .tokenized(examples, _): return .tokenized(examples)
        case let .texts(reader):
            var texts: [String] = []
            while let text = try reader.next() { texts.append(text) }
            return .texts(texts)
        }
    }

    /// A text file's lines, blank ones included (but not the empty one after a final newline).
    public static func lines(path: String) throws -> [String] {
        let reader = try LineReader(path: path)
        var lines: [String] = []
        while let line = try reader.nextText() { lines.append(line) }
        return lines
    }

    /// The next non-blank line of a `.jsonl` file as a JSON object, nil at the end.
    static func nextJSONObject(_ lines: LineReader) throws -> [String: Any]? {
        while let line = try lines.nextText() {
            guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw DataError(path: lines.path, line: lines.lineNumber, problem: "not a JSON object")
            }
            return object
        }
        return nil
    }

    private static func tokenizedExample(_ object: [String: Any], _ lines: LineReader) throws -> TokenizedExample {
        func failure(_ problem: String) -> DataError { DataError(path: lines.path, line: lines.lineNumber, problem: problem) }
        guard let ids = object["input_ids"] else { throw failure("mixes text records with input_ids records") }
        let inputIDs = try integers(ids, field: "input_ids", lines)
        guard !inputIDs.isEmpty else { throw failure("input_ids is empty") }
        var labels: [Int32]?
        if let labelValue = object["labels"] {
            let values = try integers(labelValue, field: "labels", lines)
            guard values.count == inputIDs.count else { throw failure("labels has \(values.count) values, input_ids \(inputIDs.count)") }
            labels = values
        }
        return TokenizedExample(inputIDs: inputIDs, labels: labels)
    }

    /// A JSON array of token ids, or an error naming the first element that is not one.
    private static func integers(_ value: Any, field: String, _ lines: LineReader) throws -> [Int32] {
        func failure(_ problem: String) -> DataError { DataError(path: lines.path, line: lines.lineNumber, problem: problem) }
        guard let array = value as? [Any] else { throw failure("\(field) is not an array of integers") }
        var result: [Int32] = []
        result.reserveCapacity(array.count)
        for (index, element) in array.enumerated() {
            // JSON's true and false arrive as NSNumbers too, of C type char, which no JSON number has.
            guard let number = element as? NSNumber, number.objCType.pointee != CChar(UInt8(ascii: "c")) else {
                throw failure("\(field)[\(index)] is not an integer")
            }
            guard let integer = Int32(exactly: number.doubleValue) else {
                throw failure(number.doubleValue.rounded() == number.doubleValue
                    ? "\(field)[\(index)] is \(number), out of range for a token id (a 32-bit integer)"
                    : "\(field)[\(index)] is \(number), not an integer")
            }
            result.append(integer)
        }
        return result
    }
}

/// The texts of a data file, one at a time, in file order: every record's (`nextRecord`), or the
/// ones that are not blank (`next`).
public final class TextReader {
    enum Format {
        case plain
        case csv(CSVRows, column: Int, fieldCount: Int)
        case jsonl(field: String)
    }

    private let lines: LineReader
    private let format: Format
    private var textCount = 0
    /// How many blank records `next` has passed over.
    public private(set) var blankCount = 0

    init(_ lines: LineReader, format: Format) {
        self.lines = lines
        self.format = format
    }

    /// The next text that is not blank, nil after the last; a file without any is an error.
    public func next() throws -> String? {
        // A .txt line is blank when it holds only spaces and tabs; a field, when only white space
        // and line breaks.
        let blank: CharacterSet = if case .plain = format { .whitespaces } else { .whitespacesAndNewlines }
        while let text = try nextRecord() {
            guard !text.trimmingCharacters(in: blank).isEmpty else {
                blankCount += 1
                continue
            }
            textCount += 1
            return text
        }
        guard textCount > 0 else { throw DataError(path: lines.path, problem: "holds no examples") }
        return nil
    }

    /// The next record's text, blank or not; nil at the end of the file. The k-th call gives the
    /// k-th record: a .txt line, a .csv row, a .jsonl record (blank .jsonl lines hold none).
    public func nextRecord() throws -> String? {
        switch format {
        case .plain:
            return try lines.nextText()
        case let .csv(rows, column, fieldCount):
            guard let row = try rows.next() else { return nil }
            guard row.fields.count == fieldCount else {
                throw DataError(path: lines.path, line: row.line, problem: "has \(row.fields.count) fields, the header has \(fieldCount)")
            }
            return row.fields[column]
        case let .jsonl(field):
            guard let object = try DataFile.nextJSONObject(lines) else { return nil }
            func failure(_ problem: String) -> DataError { DataError(path: lines.path, line: lines.lineNumber, problem: problem) }
            guard object["input_ids"] == nil else { throw failure("mixes input_ids records with text records") }
            guard let value = object[field] as? String else { throw failure("has no string field '\(field)' (set --text-field)") }
            return value
        }
    }
}

/// The rows of a CSV table, one at a time: fields separated by commas, optionally quoted with `"`,
/// a doubled `""` inside quotes standing for one `"`, line breaks allowed inside quotes.
final class CSVRows {
    private let lines: LineReader
    /// The scalars of the current line, then the LF that ended it (if one did).
    private var scalars = "".unicodeScalars
    private var position = "".unicodeScalars.startIndex
    private var lineEndsWithLF = false
    private var pending: Unicode.Scalar?
    private var line = 1

    init(_ lines: LineReader) throws {
        self.lines = lines
        pending = try nextScalar()
    }

    private func nextScalar() throws -> Unicode.Scalar? {
        while position == scalars.endIndex {
            if lineEndsWithLF {
                lineEndsWithLF = false
                return "\n"
            }
            guard let (bytes, endsWithLF) = try lines.next() else { return nil }
            scalars = try lines.text(bytes).unicodeScalars
            position = scalars.startIndex
            lineEndsWithLF = endsWithLF
        }
        defer { scalars.formIndex(after: &position) }
        return scalars[position]
    }

    /// Where the reader is in a quoted field, by the line its opening quote is on.
    private enum Quoting {
        case none
        case open(line: Int)
        case closed(openedOn: Int)
    }

    /// The next row that is not blank, with the line it starts on; nil at the end of the file.
    /// A quote that is never closed, or a closing quote followed by more of the field, is an error
    /// naming the line where the quote opened: read on, it would take the rows after it into the field.
    func next() throws -> (line: Int, fields: [String])? {
        var fields: [String] = []
        var field = ""
        var quoting = Quoting.none
        var rowLine = line
        while let scalar = pending {
            pending = try nextScalar()
            switch quoting {
            case .open(let openedOn):
                if scalar == "\"" {
                    if pending == "\"" { field.unicodeScalars.append("\""); pending = try nextScalar() } else { quoting = .closed(openedOn: openedOn) }
                } else {
                    if scalar == "\n" { line += 1 }
                    field.unicodeScalars.append(scalar)
                }
                continue
            case .closed(let openedOn) where scalar != "," && scalar != "\n" && !(scalar == "\r" && pending == "\n"):
                let closedOn = openedOn == line ? "" : " closes on line \(line) and"
                throw DataError(path: lines.path, line: openedOn,
                                problem: "the quoted field that opens here\(closedOn) has text after its closing quote (a quote inside a quoted field is written \"\")")
            case .none, .closed: break
            }
            switch scalar {
            case "\"" where field.isEmpty: quoting = .open(line: line)
            case ",": fields.append(field); field = ""; quoting = .none
            case "\r" where pending == "\n": continue
            case "\n":
                line += 1
                fields.append(field)
                quoting = .none
                if !(fields.count == 1 && fields[0].isEmpty) { return (rowLine, fields) }
                (fields, field, rowLine) = ([], "", line)
            default: field.unicodeScalars.append(scalar)
            }
        }
        if case let .open(openedOn) = quoting { throw DataError(path: lines.path, line: openedOn, problem: "quoted field is not closed") }
        guard !field.isEmpty || !fields.isEmpty else { return nil }
        fields.append(field)
        return (rowLine, fields)
    }
}
