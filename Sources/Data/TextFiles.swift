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

    public var count: Int {
        switch self {
        case let .texts(texts): return texts.count
        case let .tokenized(examples): return examples.count
        }
    }
}

public enum DataFile {
    /// Reads `.txt` (one example per line, blank lines skipped), `.csv` (the `textColumn` of an
    /// RFC 4180 table with a header row) or `.jsonl` (each record's `textField`, or its
    /// `input_ids` and optional `labels` for pre-tokenized data).
    public static func read(path: String, textColumn: String = "text", textField: String = "text") throws -> DataFileContents {
        guard let data = FileManager.default.contents(atPath: path) else {
            var isDirectory: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
            throw DataError(path: path, problem: exists ? (isDirectory.boolValue ? "is a directory, expected a data file" : "cannot be read") : "no such file")
        }
        let text = String(decoding: data, as: UTF8.self)
        let contents: DataFileContents
        switch URL(fileURLWithPath: path).pathExtension.lowercased() {
        case "txt": contents = .texts(lines(of: text).filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty })
        case "csv": contents = .texts(try csvColumn(text, column: textColumn, path: path))
        case "jsonl": contents = try jsonLines(text, field: textField, path: path)
        default: throw DataError(path: path, problem: "unknown data format (use .txt, .csv or .jsonl)")
        }
        guard contents.count > 0 else { throw DataError(path: path, problem: "holds no examples") }
        return contents
    }

    /// A text file's lines, blank ones included (but not the empty one after a final newline).
    public static func lines(path: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError(path: path, problem: "no such file") }
        var result = lines(of: String(decoding: data, as: UTF8.self))
        if result.last == "" { result.removeLast() }
        return result
    }

    /// Lines split at LF, with a CR before it dropped. (Swift's Characters would keep "\r\n" whole.)
    static func lines(of text: String) -> [String] {
        text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            String(line.last == "\r" ? line.dropLast() : line)
        }
    }

    /// The named column of a CSV table: fields separated by commas, optionally quoted with `"`,
    /// a doubled `""` inside quotes standing for one `"`, line breaks allowed inside quotes.
    static func csvColumn(_ text: String, column: String, path: String) throws -> [String] {
        var rows: [(line: Int, fields: [String])] = []
        var fields: [String] = []
        var field = ""
        var inQuotes = false
        var line = 1, rowLine = 1
        var scalars = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = scalars.next()
        func endRow() {
            fields.append(field)
            field = ""
            if !(fields.count == 1 && fields[0].isEmpty) { rows.append((rowLine, fields)) }
            fields = []
        }
        while let scalar = pending {
            pending = scalars.next()
            if inQuotes {
                if scalar == "\"" {
                    if pending == "\"" { field.unicodeScalars.append("\""); pending = scalars.next() } else { inQuotes = false }
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
                endRow()
                line += 1
                rowLine = line
            default: field.unicodeScalars.append(scalar)
            }
        }
        if inQuotes { throw DataError(path: path, line: rowLine, problem: "quoted field is not closed") }
        if !field.isEmpty || !fields.isEmpty { endRow() }
        guard let header = rows.first else { return [] }
        guard let index = header.fields.firstIndex(of: column) else {
            throw DataError(path: path, problem: "no column '\(column)' (columns: \(header.fields.joined(separator: ", ")))")
        }
        return try rows.dropFirst().compactMap { row in
            guard row.fields.count == header.fields.count else {
                throw DataError(path: path, line: row.line, problem: "has \(row.fields.count) fields, the header has \(header.fields.count)")
            }
            let value = row.fields[index]
            return value.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? nil : value
        }
    }

    static func jsonLines(_ text: String, field: String, path: String) throws -> DataFileContents {
        var texts: [String] = []
        var examples: [TokenizedExample] = []
        for (offset, line) in lines(of: text).enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            let lineNumber = offset + 1
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw DataError(path: path, line: lineNumber, problem: "not a JSON object")
            }
            if let ids = object["input_ids"] {
                guard texts.isEmpty else { throw DataError(path: path, line: lineNumber, problem: "mixes input_ids records with text records") }
                guard let inputIDs = integers(ids), !inputIDs.isEmpty else {
                    throw DataError(path: path, line: lineNumber, problem: "input_ids is not a non-empty array of integers")
                }
                var labels: [Int32]?
                if let labelValue = object["labels"] {
                    guard let values = integers(labelValue), values.count == inputIDs.count else {
                        throw DataError(path: path, line: lineNumber, problem: "labels is not an array of integers as long as input_ids")
                    }
                    labels = values
                }
                examples.append(TokenizedExample(inputIDs: inputIDs, labels: labels))
            } else {
                guard examples.isEmpty else { throw DataError(path: path, line: lineNumber, problem: "mixes text records with input_ids records") }
                guard let value = object[field] as? String else {
                    throw DataError(path: path, line: lineNumber, problem: "has no string field '\(field)' (set --text-field)")
                }
                if !value.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { texts.append(value) }
            }
        }
        return examples.isEmpty ? .texts(texts) : .tokenized(examples)
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
