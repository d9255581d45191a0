import CKernels
import Foundation

/// What the CPU this process runs on can do: its instruction sets (cpuid, and whether the OS saves
/// their registers) and its per-core cache sizes (Linux's sysfs). Read once.
public struct CPU: Sendable {
    public let avx2FMA: Bool
    public let avx512: Bool
    public let avx512BF16: Bool
    public let amxBF16: Bool
    /// Per core, in bytes; nil where the system does not say.
    public let l1DataBytes: Int?
    public let l2Bytes: Int?
    public let modelName: String?

    public static let current = CPU()

    private init() {
        let features = ckernels_read_cpu_features()
        avx2FMA = features.avx2_fma != 0
        avx512 = features.avx512f != 0
        avx512BF16 = features.avx512_bf16 != 0
        amxBF16 = features.amx_bf16 != 0
        var caches: [String: Int] = [:]
        for index in 0..<8 {
            let directory = "/sys/devices/system/cpu/cpu0/cache/index\(index)/"
            guard let level = Self.read(directory + "level"), let type = Self.read(directory + "type"),
                  let size = Self.read(directory + "size").flatMap(Self.bytes) else { continue }
            caches[level + type] = size
        }
        l1DataBytes = caches["1Data"]
        l2Bytes = caches["2Unified"]
        modelName = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("model name") }?
            .split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) }
    }

    /// The features, as /proc/cpuinfo names them.
    public var featureNames: [String] {
        [("avx2 fma", avx2FMA), ("avx512f/bw/dq/vl", avx512), ("avx512_bf16", avx512BF16), ("amx_bf16 amx_tile", amxBF16)]
            .filter(\.1).map(\.0)
    }

    /// The matrix multiplication path every product of this process uses.
    public static var matmulPath: String { MatrixMultiply.Kernel.selected.path.rawValue }

    /// The kernel of `--bf16`'s products, if the CPU has one.
    public static var bfloat16MatmulPath: String? { MatrixMultiply.Kernel.selectedBFloat16?.path.rawValue }

    public static var matmulEnvironmentVariable: String { MatrixMultiply.Kernel.environmentVariable }

    /// A `GPT2_DDP_MATMUL` that names no path, or one this CPU cannot run, is an error at start.
    public static func checkForcedPaths() throws { _ = try MatrixMultiply.Kernel.forced() }

    /// Each path this CPU can run, with its micro-kernel's measured GFLOP/s on data in cache and
    /// the blocking it uses.
    public static func matmulPaths() -> [(path: String, gflops: Double, tile: String, block: String)] {
        MatrixMultiply.Kernel.Path.allCases.filter { MatrixMultiply.Kernel.available($0) }.map {
            let kernel = MatrixMultiply.Kernel($0)
            return ($0.rawValue, kernel.measuredGFLOPS(), "\(kernel.mr)x\(kernel.nr)", "kc \(kernel.kc), nc \(kernel.nc)")
        }
    }

    private static func read(_ path: String) -> String? {
        (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// "48K", "1024K", "2M" as bytes.
    private static func bytes(_ text: String) -> Int? {
        let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        guard let last = text.last else { return nil }
        if let unit = units[last] { return Int(text.dropLast()).map { $0 * unit } }
        return Int(text)
    }
}
