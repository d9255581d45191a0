#if canImport(Glibc)
import Glibc
#endif

/// One contiguous, 64-byte aligned, zero-initialised block of `Float`s: parameters, gradients,
/// optimiser moments and activations each live in one, so a whole set moves in one call.
public final class FloatBuffer: @unchecked Sendable {  // callers coordinate access, as with any raw buffer
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    public init(count: Int) {
        precondition(count >= 0)
        var raw: UnsafeMutableRawPointer?
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        guard posix_memalign(&raw, 64, bytes) == 0, let raw else { fatalError("out of memory allocating \(bytes) bytes") }
        memset(raw, 0, bytes)
        self.pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        self.count = count
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { pointer.update(from: base, count: values.count) }
        }
    }

    deinit { free(pointer) }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
    public var array: [Float] { Array(buffer) }
    /// The elements of `range`, for the collectives that move one part of a buffer.
    public func slice(_ range: Range<Int>) -> UnsafeMutableBufferPointer<Float> {
        precondition(range.lowerBound >= 0 && range.upperBound <= count)
        return UnsafeMutableBufferPointer(start: pointer + range.lowerBound, count: range.count)
    }

    public func zero() { memset(pointer, 0, count * MemoryLayout<Float>.stride) }

    public func copy(from other: FloatBuffer) {
        precondition(other.count == count)
        pointer.update(from: other.pointer, count: count)
    }

    /// A 64-bit hash of the exact bits, to tell whether two buffers are identical.
    public func checksum() -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325 ^ UInt64(count)
        let raw = UnsafeRawPointer(pointer)
        for word in 0..<(count / 2) {
            hash = (hash ^ raw.load(fromByteOffset: word * 8, as: UInt64.self)) &* 0x0000_0100_0000_01B3
            hash ^= hash >> 29
        }
        if count % 2 == 1 { hash = (hash ^ UInt64(pointer[count - 1].bitPattern)) &* 0x0000_0100_0000_01B3 }
        return hash
    }

    public subscript(index: Int) -> Float {
        get { pointer[index] }
        set { pointer[index] = newValue }
    }
}
