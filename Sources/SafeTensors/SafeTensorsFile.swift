import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Element types of the safetensors format. Only the floating-point ones convert to `Float`; the
/// others are still known so that a file holding them is described rather than rejected as corrupt.
public enum DType: String, Sendable, CaseIterable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case f8e4m3 = "F8_E4M3", f8e5m2 = "F8_E5M2"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8"
    case u64 = "U64", u32 = "U32", u16 = "U16", u8 = "U8", bool = "BOOL"

    public var byteSize: Int {
        switch self {
        case .f64, .i64, .u64: return 8
        case .f32, .i32, .u32: return 4
        case .f16, .bf16, .i16, .u16: return 2
        case .f8e4m3, .f8e5m2, .i8, .u8, .bool: return 1
        }
    }

    public var convertsToFloat: Bool { self == .f64 || self == .f32 || self == .f16 || self == .bf16 }
}

public struct TensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Byte range inside the data section (which starts right after the header).
    public let dataOffsets: Range<Int>

    public var elementCount: Int { shape.reduce(1, *) }
}

public enum SafeTensorsError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, reason: String)
    case corrupt(path: String, problem: String)
    case missingTensor(path: String, name: String)
    case notFloat(path: String, name: String, dtype: String)
    case wrongShape(path: String, name: String, expected: [Int], found: [Int])
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason): return "\(path): cannot open: \(reason)"
        case let .corrupt(path, problem): return "\(path): not a valid safetensors file: \(problem)"
        case let .missingTensor(path, name): return "\(path): tensor '\(name)' is missing"
        case let .notFloat(path, name, dtype):
            return "\(path): tensor '\(name)' has dtype \(dtype); only F32, F16, BF16 and F64 can be read as floats"
        case let .wrongShape(path, name, expected, found):
            return "\(path): tensor '\(name)' has shape \(found), expected \(expected)"
        case let .cannotWrite(path, reason): return "\(path): cannot write: \(reason)"
        }
    }
}

/// A safetensors file, memory-mapped: the header is parsed and checked once, tensor data is read
/// straight from the mapping when asked for.
public final class SafeTensorsFile: Sendable {
    public let path: String
    /// Tensors in the order their data appears in the file.
    public let tensors: [TensorInfo]
    public let metadata: [String: String]
    private let byName: [String: Int]
    private let file: MappedFile
    private let dataStart: Int

    /// The largest header accepted; the reference implementation uses the same bound.
    static let maximumHeaderSize = 100_000_000

    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        guard file.bytes.count >= 8 else {
            throw SafeTensorsError.corrupt(path: path, problem: "file is \(file.bytes.count) bytes, too short for the 8-byte header length")
        }
        let header = try Self.parseHeader(mapping: file.bytes.baseAddress!, fileSize: file.bytes.count, path: path)
        self.tensors = header.tensors
        self.metadata = header.metadata
        self.dataStart = header.dataStart
        self.byName = Dictionary(uniqueKeysWithValues: tensors.enumerated().map { ($1.name, $0) })
    }

    public func info(_ name: String) -> TensorInfo? { byName[name].map { tensors[$0] } }

    /// Reads a floating-point tensor as `Float`, checking its shape when one is expected.
    public func floats(_ name: String, shape expected: [Int]? = nil) throws -> [Float] {
        guard let tensor = info(name) else { throw SafeTensorsError.missingTensor(path: path, name: name) }
        var result = [Float](repeating: 0, count: tensor.elementCount)
        try result.withUnsafeMutableBufferPointer { try read(name, shape: expected, into: $0) }
        return result
    }

    /// Converts a floating-point tensor to `Float` straight into `destination`, which must hold
    /// exactly its elements.
    public func read(_ name: String, shape expected: [Int]? = nil, into destination: UnsafeMutableBufferPointer<Float>) throws {
        guard let tensor = info(name) else { throw SafeTensorsError.missingTensor(path: path, name: name) }
        if let expected, expected != tensor.shape {
            throw SafeTensorsError.wrongShape(path: path, name: name, expected: expected, found: tensor.shape)
        }
        guard tensor.dtype.convertsToFloat else {
            throw SafeTensorsError.notFloat(path: path, name: name, dtype: tensor.dtype.rawValue)
        }
        precondition(destination.count == tensor.elementCount, "destination does not match tensor \(name)")
        let source = file.bytes.baseAddress! + dataStart + tensor.dataOffsets.lowerBound
        let count = tensor.elementCount
        guard let out = destination.baseAddress else { return }
        // The data section need not be aligned for the element type, so every load is unaligned.
        switch tensor.dtype {
        case .f32:
            memcpy(out, source, count * 4)
        case .f64:
            for i in 0..<count { out[i] = Float(source.loadUnaligned(fromByteOffset: i * 8, as: Double.self)) }
        case .f16:
            for i in 0..<count { out[i] = Float(Float16(bitPattern: source.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))) }
        case .bf16:
            for i in 0..<count {
                out[i] = Float(bitPattern: UInt32(source.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) << 16)
            }
        default:
            preconditionFailure("checked above")
        }
    }

    private struct Header {
        var tensors: [TensorInfo]
        var metadata: [String: String]
        var dataStart: Int
    }

    private static func parseHeader(mapping: UnsafeRawPointer, fileSize: Int, path: String) throws -> Header {
        func corrupt(_ problem: String) -> SafeTensorsError { .corrupt(path: path, problem: problem) }
        let headerLength = UInt64(littleEndian: mapping.loadUnaligned(as: UInt64.self))
        guard headerLength <= UInt64(fileSize - 8) else {
            throw corrupt("header length \(headerLength) runs past the end of the file (\(fileSize) bytes)")
        }
        guard headerLength <= UInt64(maximumHeaderSize) else {
            throw corrupt("header length \(headerLength) exceeds the \(maximumHeaderSize)-byte limit")
        }
        let headerBytes = Data(bytes: mapping + 8, count: Int(headerLength))
        guard headerBytes.first == UInt8(ascii: "{") else { throw corrupt("header does not start with '{'") }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: headerBytes)
        } catch {
            throw corrupt("header is not valid JSON")
        }
        guard let entries = object as? [String: Any] else { throw corrupt("header is not a JSON object") }

        var metadata: [String: String] = [:]
        var tensors: [TensorInfo] = []
        let dataSize = fileSize - 8 - Int(headerLength)
        for (name, value) in entries {
            if name == "__metadata__" {
                guard let fields = value as? [String: Any] else { throw corrupt("__metadata__ is not an object") }
                for (key, field) in fields {
                    guard let text = field as? String else { throw corrupt("__metadata__ value for '\(key)' is not a string") }
                    metadata[key] = text
                }
                continue
            }
            guard let fields = value as? [String: Any] else { throw corrupt("entry '\(name)' is not an object") }
            guard let dtypeName = fields["dtype"] as? String else { throw corrupt("tensor '\(name)' has no dtype") }
            guard let dtype = DType(rawValue: dtypeName) else { throw corrupt("tensor '\(name)' has unknown dtype '\(dtypeName)'") }
            guard let shape = integers(fields["shape"]), shape.allSatisfy({ $0 >= 0 }) else {
                throw corrupt("tensor '\(name)' has no valid shape")
            }
            guard let offsets = integers(fields["data_offsets"]), offsets.count == 2, offsets[0] >= 0, offsets[0] <= offsets[1] else {
                throw corrupt("tensor '\(name)' has no valid data_offsets")
            }
            var byteCount = dtype.byteSize
            for dimension in shape {
                let (product, overflow) = byteCount.multipliedReportingOverflow(by: dimension)
                guard !overflow else { throw corrupt("tensor '\(name)' shape \(shape) is too large") }
                byteCount = product
            }
            guard offsets[1] - offsets[0] == byteCount else {
                throw corrupt("tensor '\(name)' with dtype \(dtypeName) and shape \(shape) needs \(byteCount) bytes but data_offsets \(offsets) span \(offsets[1] - offsets[0])")
            }
            guard offsets[1] <= dataSize else {
                throw corrupt("tensor '\(name)' data_offsets \(offsets) run past the end of the data (\(dataSize) bytes)")
            }
            tensors.append(TensorInfo(name: name, dtype: dtype, shape: shape, dataOffsets: offsets[0]..<offsets[1]))
        }
        tensors.sort { ($0.dataOffsets.lowerBound, $0.dataOffsets.upperBound, $0.name) < ($1.dataOffsets.lowerBound, $1.dataOffsets.upperBound, $1.name) }
        // The format requires the tensors to tile the data section exactly: no overlap, no gap.
        var expectedStart = 0
        for tensor in tensors {
            if tensor.dataOffsets.lowerBound < expectedStart {
                throw corrupt("tensor '\(tensor.name)' overlaps the previous tensor's data")
            }
            if tensor.dataOffsets.lowerBound > expectedStart {
                throw corrupt("gap in the data before tensor '\(tensor.name)' (bytes \(expectedStart)..<\(tensor.dataOffsets.lowerBound) are unused)")
            }
            expectedStart = tensor.dataOffsets.upperBound
        }
        guard expectedStart == dataSize else {
            throw corrupt("data section is \(dataSize) bytes but the tensors cover \(expectedStart)")
        }
        return Header(tensors: tensors, metadata: metadata, dataStart: 8 + Int(headerLength))
    }

    /// A JSON array of whole numbers, as Foundation hands it over.
    private static func integers(_ value: Any?) -> [Int]? {
        guard let array = value as? [Any] else { return nil }
        var result: [Int] = []
        for element in array {
            guard let number = element as? NSNumber, let integer = Int(exactly: number.doubleValue) else { return nil }
            result.append(integer)
        }
        return result
    }
}
