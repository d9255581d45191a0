import Foundation

/// A tensor to be written: the caller keeps `values` alive for the duration of the write.
public struct FloatTensor {
    public let name: String
    public let shape: [Int]
    public let values: UnsafeBufferPointer<Float>

    public init(name: String, shape: [Int], values: UnsafeBufferPointer<Float>) {
        precondition(shape.reduce(1, *) == values.count, "tensor \(name): shape \(shape) does not match \(values.count) values")
        self.name = name
        self.shape = shape
        self.values = values
    }
}

public enum SafeTensorsWriter {
    /// Writes F32 tensors, in the order given, atomically. The header is padded with spaces to a
    /// multiple of 8 bytes so that the data section is aligned, as the reference writer does.
    /// `willWrite(i)` runs just before tensor i's values are read, so that they can be filled in
    /// then (a buffer reused for several tensors in turn).
    public static func write(_ tensors: [FloatTensor], metadata: [String: String] = [:], to path: String,
                             willWrite: (Int) throws -> Void = { _ in }) throws {
        var header: [String: Any] = [:]
        var offset = 0
        for tensor in tensors {
            guard header[tensor.name] == nil, tensor.name != "__metadata__" else {
                throw SafeTensorsError.cannotWrite(path: path, reason: "tensor name '\(tensor.name)' is used twice or reserved")
            }
            let byteCount = tensor.values.count * 4
            header[tensor.name] = ["dtype": DType.f32.rawValue, "shape": tensor.shape, "data_offsets": [offset, offset + byteCount]]
            offset += byteCount
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var headerBytes = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys, .withoutEscapingSlashes])
        headerBytes.append(contentsOf: [UInt8](repeating: UInt8(ascii: " "), count: (8 - headerBytes.count % 8) % 8))
        try AtomicFile.write(to: path) { file in
            var length = UInt64(headerBytes.count).littleEndian
            try withUnsafeBytes(of: &length) { try file.append($0) }
            try file.append(headerBytes)
            for (index, tensor) in tensors.enumerated() {
                try willWrite(index)
                try file.append(UnsafeRawBufferPointer(tensor.values))
            }
        }
    }
}
