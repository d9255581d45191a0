import Foundation
import Synchronization

// Loads, stores and functions on 16 floats, the kernels' vector unit (two AVX2 registers).

@inline(__always)
func load16(_ pointer: UnsafePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(pointer).loadUnaligned(as: SIMD16<Float>.self)
}

@inline(__always)
func load16(_ pointer: UnsafeMutablePointer<Float>) -> SIMD16<Float> { load16(UnsafePointer(pointer)) }

@inline(__always)
func store16(_ value: SIMD16<Float>, _ pointer: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: SIMD16<Float>.self)
}

/// The `lanes` (≤ 16) floats at `pointer`; missing lanes read as `padding`.
@inline(__always)
func load16(_ pointer: UnsafePointer<Float>, _ lanes: Int, padding: Float = 0) -> SIMD16<Float> {
    if lanes == 16 { return load16(pointer) }
    var value = SIMD16<Float>(repeating: padding)
    for i in 0..<lanes { value[i] = pointer[i] }
    return value
}

@inline(__always)
func load16(_ pointer: UnsafeMutablePointer<Float>, _ lanes: Int, padding: Float = 0) -> SIMD16<Float> {
    load16(UnsafePointer(pointer), lanes, padding: padding)
}

/// Stores the first `lanes` (≤ 16) floats of `value` at `pointer`.
@inline(__always)
func store16(_ value: SIMD16<Float>, _ pointer: UnsafeMutablePointer<Float>, _ lanes: Int) {
    if lanes == 16 { return store16(value, pointer) }
    for i in 0..<lanes { pointer[i] = value[i] }
}

/// Calls `body(start, lanes)` for consecutive 16-float chunks of `range`; the last may be shorter.
@inline(__always)
func forEachChunk(_ range: Range<Int>, _ body: (Int, Int) -> Void) {
    var start = range.lowerBound
    while start + 16 <= range.upperBound {
        body(start, 16)
        start += 16
    }
    if start < range.upperBound { body(start, range.upperBound - start) }
}

/// The lane-wise maximum (a compare and a blend; the stdlib's `pointwiseMax` goes lane by lane to
/// honour NaN rules the kernels do not need).
@inline(__always)
func maximum16(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> { a.replacing(with: b, where: b .> a) }

/// eˣ to about 2 ulp (Cephes' expf: x = n·ln2 + r with |r| ≤ ln2/2, a degree-7 polynomial in r,
/// then 2ⁿ through the exponent bits). 0 below -87.3 (so e^-∞ = 0); infinity from 88.38 on (a
/// little early: eˣ overflows Float at 88.72), which softmax and σ never come near.
/// Written with operations that map to single vector instructions: the stdlib's `clamped`,
/// `pointwiseMin` and float-to-integer conversions compile to per-lane code.
@inline(__always)
func exp16(_ x: SIMD16<Float>) -> SIMD16<Float> {
    let clamped = x.replacing(with: -87.3, where: x .< -87.3).replacing(with: 88.72, where: x .> 88.72)
    // Adding 1.5·2²³ rounds x·log2(e) to an integer n, which then sits in the low mantissa bits.
    let shifter = SIMD16<Float>(repeating: 12582912)
    let shifted = shifter.addingProduct(clamped, SIMD16(repeating: 1.44269504088896341))
    let n = shifted - shifter
    // r = x - n·ln2, with ln2 split in two so that n·ln2's high part is exact.
    let r = clamped.addingProduct(n, SIMD16(repeating: -0.693359375)).addingProduct(n, SIMD16(repeating: 2.12194440e-4))
    var p = SIMD16<Float>(repeating: 1.9875691500e-4)
    p = SIMD16(repeating: 1.3981999507e-3).addingProduct(p, r)
    p = SIMD16(repeating: 8.3334519073e-3).addingProduct(p, r)
    p = SIMD16(repeating: 4.1665795894e-2).addingProduct(p, r)
    p = SIMD16(repeating: 1.6666665459e-1).addingProduct(p, r)
    p = SIMD16(repeating: 5.0000001201e-1).addingProduct(p, r)
    let y = (r + 1).addingProduct(p, r * r)
    let exponent = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- unsafeBitCast(shifter, to: SIMD16<Int32>.self)
    let twoToTheN = unsafeBitCast((exponent &+ 127) &<< 23, to: SIMD16<Float>.self)
    return (y * twoToTheN).replacing(with: 0, where: x .< -87.3)
}

/// Reusable scratch buffers (matrix packing, attention scores), so that kernels allocate nothing
/// per call once warm. A lock-protected free list rather than per-thread buffers, because kernels
/// may be called from any thread, including concurrently from several.
enum ScratchSpace {
    private static let free = Mutex<[FloatBuffer]>([])

    /// Runs `body` with at least `count` floats of 64-byte aligned scratch memory (not zeroed).
    static func with<R>(count: Int, _ body: (UnsafeMutablePointer<Float>) -> R) -> R {
        let buffer = free.withLock { buffers in
            if let index = buffers.firstIndex(where: { $0.count >= count }) { return buffers.remove(at: index) }
            return nil
        } ?? FloatBuffer(count: count)
        defer { free.withLock { $0.append(buffer) } }
        return body(buffer.pointer)
    }
}
