import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Writes a file so that readers see either the old content or the complete new one: the bytes go
/// to a temporary file in the same directory, are flushed to disk, and the file is renamed over
/// the destination. On any failure the temporary file is removed and the destination is untouched.
public struct AtomicFile {
    public let path: String
    private let descriptor: Int32

    public static func write(to path: String, _ body: (inout AtomicFile) throws -> Void) throws {
        let url = URL(fileURLWithPath: path)
        let temporaryPath = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())").path
        let descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else { throw SafeTensorsError.cannotWrite(path: path, reason: String(cString: strerror(errno))) }
        var file = AtomicFile(path: path, descriptor: descriptor)
        do {
            try body(&file)
            guard fsync(descriptor) == 0 else { throw SafeTensorsError.cannotWrite(path: path, reason: String(cString: strerror(errno))) }
            close(descriptor)
            guard rename(temporaryPath, path) == 0 else {
                throw SafeTensorsError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
            }
        } catch {
            close(descriptor)
            unlink(temporaryPath)
            throw error
        }
    }

    /// Replaces `path` with `data` atomically.
    public static func write(_ data: Data, to path: String) throws {
        try write(to: path) { file in try file.append(data) }
    }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw SafeTensorsError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
            }
            offset += written
        }
    }

    public mutating func append(_ data: Data) throws {
        try data.withUnsafeBytes { try append($0) }
    }
}
