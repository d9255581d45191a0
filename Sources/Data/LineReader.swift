import Foundation

/// A file's lines, read a block at a time so that memory holds one block and one line, however
/// large the file. LF ends a line; a line is numbered from 1. A UTF-8 byte-order mark at the start
/// of the file is not part of its first line.
final class LineReader {
    private let file: InputFile
    /// Bytes start..<end are read and not yet returned; the first `searched` of them hold no LF.
    private var buffer = [UInt8](repeating: 0, count: 1 << 20)
    private var start = 0
    private var end = 0
    private var searched = 0
    private var atEndOfFile = false
    private(set) var lineNumber = 0

    init(path: String) throws {
        file = try InputFile(path: path)
    }

    var path: String { file.path }

    /// The next line without its LF, nil at the end of the file; valid until the next call.
    /// `endsWithLF` is false only for a last line that the file ends without a line break. A CR
    /// before the LF is kept (CSV quoting needs it); `nextText` drops it.
    func next() throws -> (bytes: ArraySlice<UInt8>, endsWithLF: Bool)? {
        while true {
            if let newline = buffer[(start + searched)..<end].firstIndex(of: 0x0A) {
                defer { (start, searched) = (newline + 1, 0) }
                return counted(buffer[start..<newline], endsWithLF: true)
            }
            searched = end - start
            if atEndOfFile {
                guard searched > 0 else { return nil }
                defer { (start, searched) = (end, 0) }
                return counted(buffer[start..<end], endsWithLF: false)
            }
            try readBlock()
        }
    }

    /// The line just found, numbered; the first without a byte-order mark, which editors on
    /// Windows put there and which is no part of the text (nor of a CSV header's first name).
    private func counted(_ bytes: ArraySlice<UInt8>, endsWithLF: Bool) -> (bytes: ArraySlice<UInt8>, endsWithLF: Bool) {
        lineNumber += 1
        let byteOrderMark: [UInt8] = [0xEF, 0xBB, 0xBF]
        return (lineNumber == 1 && bytes.starts(with: byteOrderMark) ? bytes.dropFirst(byteOrderMark.count) : bytes, endsWithLF)
    }

    /// The next line as text, without its line break (LF or CR LF), nil at the end of the file.
    func nextText() throws -> String? {
        guard let (bytes, _) = try next() else { return nil }
        return try text(bytes.last == 0x0D ? bytes.dropLast() : bytes)
    }

    /// Bytes of the current line as text. Invalid UTF-8 is an error naming the line: replacing it
    /// would train on characters the file does not hold.
    func text(_ bytes: ArraySlice<UInt8>) throws -> String {
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        let offset = invalidUTF8Offset(bytes)!
        let byte = String(bytes[bytes.startIndex + offset], radix: 16, uppercase: true)
        throw DataError(path: path, line: lineNumber, problem: "is not valid UTF-8 text (at byte \(offset + 1) of the line: 0x\(byte))")
    }

    /// Reads more of the file after the unread bytes, moved to the front of the buffer first; a
    /// line longer than the buffer doubles it.
    private func readBlock() throws {
        let unread = end - start
        buffer.withUnsafeMutableBytes { bytes in _ = memmove(bytes.baseAddress!, bytes.baseAddress! + start, unread) }
        (start, end) = (0, unread)
        if end == buffer.count { buffer += repeatElement(0, count: buffer.count) }
        let received = try buffer.withUnsafeMutableBytes { try file.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[end...])) }
        end += received
        atEndOfFile = received == 0
    }
}

/// Where `bytes` stop being UTF-8: the offset of the first byte that starts no valid character, nil
/// when they are valid throughout.
private func invalidUTF8Offset(_ bytes: some Collection<UInt8>) -> Int? {
    var parser = Unicode.UTF8.ForwardParser()
    var iterator = bytes.makeIterator()
    var offset = 0
    while true {
        switch parser.parseScalar(from: &iterator) {
        case let .valid(scalar): offset += scalar.count
        case .error: return offset
        case .emptyInput: return nil
        }
    }
}
