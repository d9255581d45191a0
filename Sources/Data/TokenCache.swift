import Foundation
import SafeTensors

/// Tokenized examples on disk, so that a restart does not tokenize a corpus again. The file is
/// flat: a magic tag, the example count N, N + 1 offsets, then every token as a 32-bit id. It is
/// read through a memory map and replaced atomically, so a reader never sees half of one.
public enum TokenCache {
    static let magic = Array("G2DTOK01".utf8)

    /// A cache file name that changes whenever the data or anything that shapes its tokens does.
    public static func fileName(dataPath: String, settings: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: dataPath) else { throw DataError(path: dataPath, problem: "no such file") }
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in data + Array(settings.utf8) { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        return "tokens-\(URL(fileURLWithPath: dataPath).deletingPathExtension().lastPathComponent)-\(String(hash, radix: 16)).bin"
    }

    /// The cached examples, or nil when the file is missing or not a complete cache.
    public static func load(path: String) -> [TokenizedExample]? {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped), data.count >= 16,
              Array(data.prefix(8)) == magic else { return nil }
        return data.withUnsafeBytes { raw -> [TokenizedExample]? in
            let count = Int(raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            let tokensStart = 16 + (count + 1) * 8
            guard count >= 0, tokensStart <= data.count else { return nil }
            func offset(_ index: Int) -> Int { Int(raw.loadUnaligned(fromByteOffset: 16 + index * 8, as: UInt64.self)) }
            guard tokensStart + offset(count) * 4 == data.count else { return nil }
            return (0..<count).map { index in
                TokenizedExample(inputIDs: (offset(index)..<offset(index + 1)).map {
                    raw.loadUnaligned(fromByteOffset: tokensStart + $0 * 4, as: Int32.self)
                })
            }
        }
    }

    public static func store(_ examples: [TokenizedExample], path: String) throws {
        var bytes = magic
        func append<T>(_ value: T) { withUnsafeBytes(of: value) { bytes += $0 } }
        append(UInt64(examples.count).littleEndian)
        var offset: UInt64 = 0
        append(offset)
        for example in examples {
            offset += UInt64(example.inputIDs.count)
            append(offset.littleEndian)
        }
        for example in examples { example.inputIDs.withUnsafeBytes { bytes += $0 } }
        try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path, withIntermediateDirectories: true)
        try AtomicFile.write(Data(bytes), to: path)
    }
}
