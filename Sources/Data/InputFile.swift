import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A data file open for reading. A path that cannot be read (missing, a directory, no permission)
/// is a `DataError` that names it and says which, rather than a Foundation error code.
final class InputFile {
    let path: String
    private let descriptor: Int32

    init(path: String) throws {
        self.path = path
        var status = stat()
        guard stat(path, &status) == 0 else { throw DataError(path: path, problem: Self.problem(errno)) }
        if (status.st_mode & S_IFMT) == S_IFDIR { throw DataError(path: path, problem: "is a directory, expected a data file") }
        descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw DataError(path: path, problem: Self.problem(errno)) }
    }

    deinit { close(descriptor) }

    /// Reads the next bytes of the file into `buffer`: how many, 0 at the end of the file.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let received = Glibc.read(descriptor, buffer.baseAddress, buffer.count)
            if received >= 0 { return received }
            guard errno == EINTR else { throw DataError(path: path, problem: Self.problem(errno)) }
        }
    }

    private static func problem(_ code: Int32) -> String {
        code == ENOENT ? "no such file" : "cannot be read: \(String(cString: strerror(code)))"
    }
}
