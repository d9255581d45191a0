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
/// memory; pre-tokenized records, which are not cached, are read at once.
public enum OpenedDataFile {
    case texts(TextReader)
    case tokenized([TokenizedExample])
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
            var examples = [try tokenizedExample(first, lines)]
            while let object = try nextJSONObject(lines) { examples.append(try tokenizedExample(object, lines)) }
            return .tokenized(examples)
        default: throw DataError(path: path, problem: "unknown data format (use .txt, .csv or .jsonl)")
        }
    }

    /// All of a data file at once (see `open`).
    public static func read(path: String, textColumn: String = "text", textField: String = "text") throws -> DataFileContents {
        switch try open(path: path, textColumn: textColumn, textField: textField) {
        case let .tokenized(examples): return .tokenized(examples)
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
        guard let inputIDs = integers(ids), !inputIDs.isEmpty else { throw failure("input_ids is not a non-empty array of integers") }
        var labels: [Int32]?
        if let labelValue = object["labels"] {
            guard let values = integers(labelValue), values.count == inputIDs.count else {
                throw failure("labels is not an array of integers as long as input_ids")
            }
            labels = values
        }
        return TokenizedExample(inputIDs: inputIDs, labels: labels)
    }

    private static func integers(_ value: Any) -> [Int32]? {
        guard let array = value as? [Any] else { return nil }
        var result: [Int32] = []
        result.reserveCapacity(array.count)
        for element in array {
            guard let number = element as? NSNumber, let integer = Int32(exactly: number.doubleValue) else { return nil }
            result.append(integer)
        }
        return result
    }
}

/// The texts of a data file, one at a time, in file order; blank ones are skipped.
public final class TextReader {
    enum Format {
        case plain
        case csv(CSVRows, column: Int, fieldCount: Int)
        case jsonl(field: String)
    }

    private let lines: LineReader
    private let format: Format
    private var textCount = 0

    init(_ lines: LineReader, format: Format) {
        self.lines = lines
        self.format = format
    }

    /// The next text, nil after the last; a file without any is an error.
    public func next() throws -> String? {
        // A .txt line is blank when it holds only spaces and tabs; a field, when only white space
        // and line breaks.
        let blank: CharacterSet = if case .plain = format { .whitespaces } else { .whitespacesAndNewlines }
        while let text = try nextRecord() {
            guard !text.trimmingCharacters(in: blank).isEmpty else { continue }
            textCount += 1
            return text
        }
        guard textCount > 0 else { throw DataError(path: lines.path, problem: "holds no examples") }
        return nil
    }

    /// The next record's text, blank or not; nil at the end of the file.
    private func nextRecord() throws -> String? {
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
            scalars = String(decoding: bytes, as: UTF8.self).unicodeScalars
            position = scalars.startIndex
            lineEndsWithLF = endsWithLF
        }
        defer { scalars.formIndex(after: &position) }
        return scalars[position]
    }

    /// The next row that is not blank, with the line it starts on; nil at the end of the file.
    func next() throws -> (line: Int, fields: [String])? {
        var fields: [String] = []
        var field = ""
        var inQuotes = false
        var rowLine = line
        while let scalar = pending {
            pending = try nextScalar()
            if inQuotes {
                if scalar == "\"" {
                    if pending == "\"" { field.unicodeScalars.append("\""); pending = try nextScalar() } else { inQuotes = false }
                } else {
                    if scalar == "\n" { line += 1 }
                    field.unicodeScalars.append(scalar)
                }
                continue
            }
            switch scalar {
            case "\"" where field.isEmpty: inQuotes = true
            case ",": fields.append(field); field = ""
            case "\r" where pending == "\n": continue
            case "\n":
                line += 1
                fields.append(field)
                if !(fields.count == 1 && fields[0].isEmpty) { return (rowLine, fields) }
                (fields, field, rowLine) = ([], "", line)
            default: field.unicodeScalars.append(scalar)
            }
        }
        if inQuotes { throw DataError(path: lines.path, line: rowLine, problem: "quoted field is not closed") }
        guard !field.isEmpty || !fields.isEmpty else { return nil }
        fields.append(field)
        return (rowLine, fields)
    }
}
