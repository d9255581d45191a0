/// How weights are held for inference. Arithmetic is fp32 either way: bfloat16 is the top half of
/// an fp32 bit pattern, so widening it is exact (a zero-extend and a 16-bit shift).
public enum WeightsDType: String, Sendable, CaseIterable {
    case float32 = "fp32"
    case bfloat16 = "bf16"

    public var bytesPerWeight: Int { self == .float32 ? 4 : 2 }
}

/// A weight's storage type, read eight at a time as fp32 by the streaming kernels.
protocol WeightElement {
    init(rounding value: Float)
    static func widen8(_ pointer: UnsafePointer<Self>) -> SIMD8<Float>
    var floatValue: Float { get }
}

extension Float: WeightElement {
    init(rounding value: Float) { self = value }

    @inline(__always)
    static func widen8(_ pointer: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(pointer).loadUnaligned(as: SIMD8<Float>.self)
    }

    var floatValue: Float { self }
}

/// bfloat16: sign, 8 exponent bits and 7 mantissa bits, the fp32 format cut to 16 bits.
public struct BFloat16: WeightElement, Sendable, Equatable {
    public var bitPattern: UInt16

    /// Rounds to the nearest bfloat16, ties to even, as PyTorch's `.to(torch.bfloat16)` does;
    /// NaN stays a (quiet) NaN.
    init(rounding value: Float) { self.init(value) }

    public init(_ value: Float) {
        let bits = value.bitPattern
        if value.isNaN {
            bitPattern = UInt16(truncatingIfNeeded: bits >> 16) | 0x0040
        } else {
            let roundingBias = 0x7FFF + ((bits >> 16) & 1)
            bitPattern = UInt16(truncatingIfNeeded: (bits &+ roundingBias) >> 16)
        }
    }

    public var floatValue: Float { Float(bitPattern: UInt32(bitPattern) << 16) }

    @inline(__always)
    static func widen8(_ pointer: UnsafePointer<BFloat16>) -> SIMD8<Float> {
        // Lane by lane, which the optimiser turns into one zero-extending load (vpmovzxwd); the
        // stdlib's SIMD conversion initialiser stays an out-of-line call per vector.
        let halves = UnsafeRawPointer(pointer).loadUnaligned(as: SIMD8<UInt16>.self)
        var words = SIMD8<UInt32>()
        for lane in 0..<8 { words[lane] = UInt32(halves[lane]) }
        return unsafeBitCast(words &<< 16, to: SIMD8<Float>.self)
    }
}

/// One decoding weight matrix in the storage type chosen.
public struct DecodingMatrix: @unchecked Sendable {  // read-only after init
    private enum Storage {
        case float32(StreamingMatrix<Float>)
        case bfloat16(StreamingMatrix<BFloat16>)
    }

    private let storage: Storage

    public init(_ dtype: WeightsDType, k: Int, n: Int, weight: (Int, Int) -> Float) {
        switch dtype {
        case .float32: storage = .float32(StreamingMatrix(k: k, n: n, weight: weight))
        case .bfloat16: storage = .bfloat16(StreamingMatrix(k: k, n: n, weight: weight))
        }
    }

    /// c[m, n] = start + a[m, k] · w (a row-major, k columns).
    public func multiply(m: Int, a: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int, start: MatrixMultiplyStart) {
        switch storage {
        case .float32(let w): StreamingMultiply.multiply(m: m, a: a, w: w, c: c, ldc: ldc, start: start)
        case .bfloat16(let w): StreamingMultiply.multiply(m: m, a: a, w: w, c: c, ldc: ldc, start: start)
        }
    }

    public var columnCount: Int {
        switch storage {
        case .float32(let w): return w.n
        case .bfloat16(let w): return w.n
        }
    }

    public func value(_ p: Int, _ j: Int) -> Float {
        switch storage {
        case .float32(let w): return w.value(p, j)
        case .bfloat16(let w): return w.value(p, j)
        }
    }
}
