import CKernels
import Foundation
import Synchronization

extension Kernels {
    /// One core's peak in GFLOP/s for the products' current kernel, measured: ten independent
    /// chains of fused multiply-adds (enough to cover the FMA latency on both FMA pipes) run for
    /// about `seconds`: 8 fp32 lanes wide for the AVX2 kernel, 16 for AVX-512, and VDPBF16PS (32
    /// bfloat16 multiply-adds) while `bfloat16Products` is on. This is the ceiling the matrix
    /// multiplication is measured against; it equals units × multiply-adds × 2 × the clock the
    /// core actually runs at.
    public static func measureCorePeakGFLOPS(seconds: Double = 0.2) -> Double {
        let path = MatrixMultiply.Kernel.current.path
        let multiplyAdds = switch path { case .avx2: 8; case .avx512: 16; case .avx512bf16: 32 }
        let iterations = 1 << 16
        var best = 0.0
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(seconds * 1e9)
        repeat {
            let start = DispatchTime.now().uptimeNanoseconds
            let result = switch path {
            case .avx2: fmaChains(iterations: iterations, seed: Float(best))
            case .avx512: ckernels_fma_chains_avx512(Int64(iterations), Float(best))
            case .avx512bf16: ckernels_dpbf16_chains_avx512(Int64(iterations), Float(best))
            }
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            precondition(result.isFinite)
            best = max(best, Double(iterations * 10 * multiplyAdds * 2) / elapsed / 1e9)
        } while DispatchTime.now().uptimeNanoseconds < deadline
        return best
    }

    @inline(never)
    private static func fmaChains(iterations: Int, seed: Float) -> Float {
        let factor = SIMD8<Float>(repeating: 0.999999), addend = SIMD8<Float>(repeating: 1e-7)
        var c0 = SIMD8<Float>(repeating: seed), c1 = c0 + 1, c2 = c0 + 2, c3 = c0 + 3, c4 = c0 + 4
        var c5 = c0 + 5, c6 = c0 + 6, c7 = c0 + 7, c8 = c0 + 8, c9 = c0 + 9
        for _ in 0..<iterations {
            c0 = addend.addingProduct(c0, factor); c1 = addend.addingProduct(c1, factor)
            c2 = addend.addingProduct(c2, factor); c3 = addend.addingProduct(c3, factor)
            c4 = addend.addingProduct(c4, factor); c5 = addend.addingProduct(c5, factor)
            c6 = addend.addingProduct(c6, factor); c7 = addend.addingProduct(c7, factor)
            c8 = addend.addingProduct(c8, factor); c9 = addend.addingProduct(c9, factor)
        }
        return (c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9).sum()
    }

    /// The rate in GB/s at which `threadCount` threads read a buffer far larger than the caches
    /// (1 GiB, summed 16 floats at a time, several sums in flight): the bound on anything that
    /// streams its data from memory once, as decoding does with the weights. Best of `repetitions`.
    public static func measureReadBandwidth(repetitions: Int = 5) -> Double {
        let buffer = FloatBuffer(count: 1 << 28)
        for i in stride(from: 0, to: buffer.count, by: 1024) { buffer[i] = 1 }  // the pages exist before timing
        var best = 0.0
        for _ in 0..<repetitions {
            let start = DispatchTime.now().uptimeNanoseconds
            let total = Mutex<Float>(0)
            parallelFor(buffer.count, grain: 1 << 16) { range in
                let sum = streamSum(buffer.pointer + range.lowerBound, count: range.count)
                total.withLock { $0 += sum }
            }
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            precondition(total.withLock { $0 } > 0)
            best = max(best, Double(buffer.count * 4) / elapsed / 1e9)
        }
        return best
    }

    @inline(never)
    private static func streamSum(_ pointer: UnsafePointer<Float>, count: Int) -> Float {
        var s0 = SIMD16<Float>(), s1 = SIMD16<Float>(), s2 = SIMD16<Float>(), s3 = SIMD16<Float>()
        for i in stride(from: 0, to: count - 63, by: 64) {
            s0 += load16(pointer + i); s1 += load16(pointer + i + 16); s2 += load16(pointer + i + 32); s3 += load16(pointer + i + 48)
        }
        return (s0 + s1 + s2 + s3).sum()
    }
}
