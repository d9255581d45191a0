import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A whole file mapped read-only into memory, unmapped when the last reference goes. Its pages
/// are read from the file as they are touched and can be dropped again by the kernel, so a
/// file larger than memory can be mapped.
public final class MappedFile: @unchecked Sendable {  // immutable after init; the mapping is read-only
    public let path: String
    /// The file's bytes (empty for an empty file, which cannot be mapped).
    public let bytes: UnsafeRawBufferPointer

    public init(path: String) throws {
        self.path = path
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw SafeTensorsError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw SafeTensorsError.cannotOpen(path: path, reason: String(cString: strerror(errno)))
        }
        if (status.st_mode & S_IFMT) == S_IFDIR { throw SafeTensorsError.cannotOpen(path: path, reason: "is a directory") }
        let size = Int(status.st_size)
        guard size > 0 else {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0), base != MAP_FAILED else {
            throw SafeTensorsError.cannotOpen(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        bytes = UnsafeRawBufferPointer(start: base, count: size)
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }

    /// Passes `region` (a part of `bytes`) to `body` a few MiB at a time, each part leaving this
    /// process's resident memory once read: one pass over a file larger than memory (a checksum,
    /// a range check) then holds none of it, while the page cache still has it for what follows.
    public func readOnce(_ region: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        let chunkSize = 1 << 22
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        var start = 0
        while start < region.count {
            let part = UnsafeRawBufferPointer(rebasing: region[start..<min(start + chunkSize, region.count)])
            try body(part)
            // madvise wants a page-aligned start; dropping the bytes before the part on its first
            // page costs at most one more read of them from the page cache.
            let address = Int(bitPattern: part.baseAddress!)
            let pageStart = address & ~(pageSize - 1)
            madvise(UnsafeMutableRawPointer(bitPattern: pageStart), address + part.count - pageStart, MADV_DONTNEED)
            start += chunkSize
        }
    }
}
