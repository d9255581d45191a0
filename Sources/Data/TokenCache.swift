import Foundation
import SafeTensors

#if canImport(Glibc)
import Glibc
#endif

/// Tokenized examples on disk, so that a restart does not tokenize a corpus again and a corpus
/// larger than memory is read through a memory map. The file is flat, in this machine's byte order:
///
///     "G2DTOK02", every token as an Int32, zeros to a multiple of 8 bytes,
///     N + 1 offsets as UInt64 (example i is tokens offsets[i]..<offsets[i + 1]),
///     N, the token count and the FNV-1a checksum of the tokens and offsets, as UInt64.
///
/// It is written while the texts are tokenized, only the offsets waiting in memory for the end,
/// and replaced atomically, so a reader never sees half of one; a file whose sizes, offsets or
/// checksum do not add up is not used.
public enum TokenCache {
    static let magic = Array("G2DTOK02".utf8)
    static let trailerSize = 24

    /// A cache file name that changes whenever the data or anything that shapes its tokens does.
    public static func fileName(dataPath: String, settings: String) throws -> String {
        let file = try InputFile(path: dataPath)
        var hash = FNV1a()
        var block = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = try block.withUnsafeMutableBytes { try file.read(into: $0) }
            guard count > 0 else { break }
            block.withUnsafeBytes { hash.combine(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
        }
        Array(settings.utf8).withUnsafeBytes { hash.combine($0) }
        return "tokens-\(URL(fileURLWithPath: dataPath).deletingPathExtension().lastPathComponent)-\(String(hash.value, radix: 16)).bin"
    }

    /// The cached examples, mapped from the file; nil when it is missing or not a complete cache.
    public static func load(path: String) -> TokenStorage? {
        guard let file = try? MappedFile(path: path) else { return nil }
        let bytes = file.bytes
        guard bytes.count >= magic.count + 8 + trailerSize, bytes.prefix(magic.count).elementsEqual(magic) else { return nil }
        let trailer = bytes.count - trailerSize
        func number(at offset: Int) -> UInt64 { bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self) }
        let (exampleCount, tokenCount, checksum) = (number(at: trailer), number(at: trailer + 8), number(at: trailer + 16))
        guard tokenCount <= UInt64(bytes.count / 4), exampleCount <= UInt64(bytes.count / 8) else { return nil }
        let offsetsStart = (magic.count + Int(tokenCount) * 4 + 7) / 8 * 8
        guard offsetsStart + (Int(exampleCount) + 1) * 8 == trailer else { return nil }
        let base = UnsafeMutableRawPointer(mutating: bytes.baseAddress!)
        let tokens = UnsafeBufferPointer(start: (base + magic.count).bindMemory(to: Int32.self, capacity: Int(tokenCount)), count: Int(tokenCount))
        let offsets = UnsafeBufferPointer(start: (base + offsetsStart).bindMemory(to: UInt64.self, capacity: Int(exampleCount) + 1),
                                          count: Int(exampleCount) + 1)
        guard offsets.first == 0, offsets.last == tokenCount, zip(offsets, offsets.dropFirst()).allSatisfy({ $0 <= $1 }) else { return nil }
        var hash = FNV1a()
        file.readOnce(UnsafeRawBufferPointer(tokens)) { hash.combine($0) }
        hash.combine(UnsafeRawBufferPointer(offsets))
        guard hash.value == checksum else { return nil }
        return TokenStorage(tokens: tokens, offsets: offsets, mapping: file)
    }

    /// Writes the examples that `body` appends as the cache file at `path`, replacing it whole.
    public static func write(to path: String, _ body: (inout Writer) throws -> Void) throws {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            // Foundation's own message can be just a code ("NSCocoaErrorDomain error 512"); the
            // system's error beneath it says what is wrong.
            let underlying = ((error as NSError).userInfo[NSUnderlyingErrorKey] as? Error).map { $0 as NSError }
            let reason = underlying.flatMap { $0.domain == NSPOSIXErrorDomain ? String(cString: strerror(Int32($0.code))) : nil }
                ?? error.localizedDescription
            throw DataError(path: directory, problem: "cannot be created as the token cache directory: \(reason)")
        }
        try AtomicFile.write(to: path) { file in
            try magic.withUnsafeBytes { try file.append($0) }
            var writer = Writer(file: file)
            try body(&writer)
            try writer.finish()
        }
    }

    public struct Writer {
        private var file: AtomicFile
        /// Tokens appended but not yet written.
        private var pending: [Int32] = []
        private var offsets: [UInt64] = [0]
        private var hash = FNV1a()

        fileprivate init(file: AtomicFile) { self.file = file }

        public mutating func append(_ inputIDs: [Int32]) throws {
            pending += inputIDs
            offsets.append(offsets.last! + UInt64(inputIDs.count))
            if pending.count >= 1 << 18 { try writePending() }
        }

        private mutating func writePending() throws {
            try pending.withUnsafeBytes { bytes in
                hash.combine(bytes)
                try file.append(bytes)
            }
            pending.removeAll(keepingCapacity: true)
        }

        fileprivate mutating func finish() throws {
            try writePending()
            let tokenCount = offsets.last!
            if tokenCount % 2 == 1 { try file.append(Data(count: 4)) }  // the offsets start 8-byte aligned
            try offsets.withUnsafeBytes { bytes in
                hash.combine(bytes)
                try file.append(bytes)
            }
            try [UInt64(offsets.count - 1), tokenCount, hash.value].withUnsafeBytes { try file.append($0) }
        }
    }
}

/// FNV-1a, 64-bit: a data file's part of the cache name, and the cache's checksum.
struct FNV1a {
    private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325

    mutating func combine(_ bytes: UnsafeRawBufferPointer) {
        for byte in bytes { value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
    }
}
