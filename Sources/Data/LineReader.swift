import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A file's lines, read a block at a time so that memory holds one block and one line, however
/// large the file. LF ends a line; a line is numbered from 1.
final class LineReader {
    let path: String
    private let descriptor: Int32
    /// Bytes start..<end are read and not yet returned; the first `searched` of them hold no LF.
    private var buffer = [UInt8](repeating: 0, count: 1 << 20)
    private var start = 0
    private var end = 0
    private var searched = 0
    private var atEndOfFile = false
    private(set) var lineNumber = 0

    init(path: String) throws {
        self.path = path
        var status = stat()
        guard stat(path, &status) == 0 else { throw DataError(path: path, problem: errno == ENOENT ? "no such file" : "cannot be read") }
        if (status.st_mode & S_IFMT) == S_IFDIR { throw DataError(path: path, problem: "is a directory, expected a data file") }
        descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw DataError(path: path, problem: "cannot be read") }
    }

    deinit { close(descriptor) }

    /// The next line without its LF, nil at the end of the file; valid until the next call.
    /// `endsWithLF` is false only for a last line that the file ends without a line break. A CR
    /// before the LF is kept (CSV quoting needs it); `nextText` drops it.
    func next() throws -> (bytes: ArraySlice<UInt8>, endsWithLF: Bool)? {
        while true {
            if let newline = buffer[(start + searched)..<end].firstIndex(of: 0x0A) {
                defer { (start, searched) = (newline + 1, 0) }
                lineNumber += 1
                return (buffer[start..<newline], true)
            }
            searched = end - start
            if atEndOfFile {
                guard searched > 0 else { return nil }
                defer { (start, searched) = (end, 0) }
                lineNumber += 1
                return (buffer[start..<end], false)
            }
            try readBlock()
        }
    }

    /// The next line as text, without its line break (LF or CR LF), nil at the end of the file.
    func nextText() throws -> String? {
        guard let (bytes, _) = try next() else { return nil }
        return String(decoding: bytes.last == 0x0D ? bytes.dropLast() : bytes, as: UTF8.self)
    }

    /// Reads more of the file after the unread bytes, moved to the front of the buffer first; a
    /// line longer than the buffer doubles it.
    private func readBlock() throws {
        let unread = end - start
        buffer.withUnsafeMutableBytes { bytes in _ = memmove(bytes.baseAddress!, bytes.baseAddress! + start, unread) }
        (start, end) = (0, unread)
        if end == buffer.count { buffer += repeatElement(0, count: buffer.count) }
        var received: Int
        repeat {
            received = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + end, $0.count - end) }
        } while received < 0 && errno == EINTR
        guard received >= 0 else { throw DataError(path: path, problem: "cannot be read: \(String(cString: strerror(errno)))") }
        end += received
        atEndOfFile = received == 0
    }
}
