import Foundation
import SafeTensors
import Testing
import TestSupport

/// Builds a safetensors file byte by byte, so that tests can make valid and broken ones.
func rawFile(header: String, data: [UInt8], declaredLength: UInt64? = nil) -> Data {
    var bytes = Data()
    var length = (declaredLength ?? UInt64(header.utf8.count)).littleEndian
    withUnsafeBytes(of: &length) { bytes.append(contentsOf: $0) }
    bytes.append(contentsOf: Array(header.utf8))
    bytes.append(contentsOf: data)
    return bytes
}

func write(_ data: Data, name: String = "model.safetensors") throws -> String {
    let path = try TestPaths.temporaryDirectory("safetensors").appendingPathComponent(name).path
    try data.write(to: URL(fileURLWithPath: path))
    return path
}

/// The error's message, or nil if opening and reading `name` succeeded.
func failure(_ data: Data, reading name: String = "a", shape: [Int]? = nil) throws -> String? {
    let path = try write(data)
    do {
        let file = try SafeTensorsFile(path: path)
        _ = try file.floats(name, shape: shape)
        return nil
    } catch let error as SafeTensorsError {
        let message = error.description
        #expect(message.hasPrefix(path), "the message names the file: \(message)")
        #expect(!message.contains("\n"))
        return message
    }
}

let eightBytes = [UInt8](repeating: 0, count: 8)

@Test func roundTripKeepsEveryBitAndTheMetadata() throws {
    let a: [Float] = [1.5, -0.0, .infinity, .leastNonzeroMagnitude, 3.1415927, -2e-30]
    let b: [Float] = (0..<12).map { Float($0) * 0.37 - 1 }
    let path = try TestPaths.temporaryDirectory().appendingPathComponent("x.safetensors").path
    try a.withUnsafeBufferPointer { pa in
        try b.withUnsafeBufferPointer { pb in
            try SafeTensorsWriter.write([FloatTensor(name: "a", shape: [6], values: pa), FloatTensor(name: "layer.b", shape: [3, 4], values: pb)],
                                        metadata: ["format": "pt", "note": "hello"], to: path)
        }
    }
    let file = try SafeTensorsFile(path: path)
    #expect(file.metadata == ["format": "pt", "note": "hello"])
    #expect(file.tensors.map(\.name) == ["a", "layer.b"])
    #expect(file.info("layer.b")?.shape == [3, 4])
    #expect(try file.floats("a").map(\.bitPattern) == a.map(\.bitPattern))
    #expect(try file.floats("layer.b", shape: [3, 4]) == b)
    // The data section starts 8-byte aligned, as the reference writer makes it.
    let headerLength = try Data(contentsOf: URL(fileURLWithPath: path)).prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    #expect(headerLength % 8 == 0)
    // No temporary file is left behind.
    #expect(try FileManager.default.contentsOfDirectory(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path) == ["x.safetensors"])
}

@Test func halfPrecisionAndDoubleConvertToFloat() throws {
    // 1.0, -2.0 in F16 (0x3C00, 0xC000); 1.0, 0.5 in BF16 (0x3F80, 0x3F00); 0.25 in F64.
    let f16: [UInt8] = [0x00, 0x3C, 0x00, 0xC0]
    let bf16: [UInt8] = [0x80, 0x3F, 0x00, 0x3F]
    var f64 = [UInt8](repeating: 0, count: 8)
    withUnsafeBytes(of: (0.25 as Double).bitPattern.littleEndian) { f64 = Array($0) }
    let header = #"{"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]},"d":{"dtype":"F64","shape":[1],"data_offsets":[8,16]}}"#
    let file = try SafeTensorsFile(path: try write(rawFile(header: header, data: f16 + bf16 + f64)))
    #expect(try file.floats("h") == [1, -2])
    #expect(try file.floats("b") == [1, 0.5])
    #expect(try file.floats("d") == [0.25])
}

@Test func truncatedFileIsRejected() throws {
    let message = try failure(Data([1, 2, 3]))
    #expect(message?.contains("too short") == true)
}

@Test func headerLengthPastTheEndIsRejected() throws {
    let message = try failure(rawFile(header: "{}", data: [], declaredLength: 1_000))
    #expect(message?.contains("runs past the end of the file") == true)
}

@Test func truncatedDataIsRejected() throws {
    let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
    let message = try failure(rawFile(header: header, data: [0, 0, 0, 0]))
    #expect(message?.contains("run past the end of the data") == true)
}

@Test func headerThatIsNotJSONIsRejected() throws {
    #expect(try failure(rawFile(header: "{not json", data: []))?.contains("not valid JSON") == true)
    #expect(try failure(rawFile(header: "[1, 2]", data: []))?.contains("does not start with '{'") == true)
}

@Test func offsetsThatDoNotMatchTheShapeAreRejected() throws {
    let header = #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#
    #expect(try failure(rawFile(header: header, data: eightBytes))?.contains("needs 12 bytes") == true)
}

@Test func overlappingAndGappedTensorsAreRejected() throws {
    let overlap = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
    #expect(try failure(rawFile(header: overlap, data: eightBytes))?.contains("overlaps") == true)
    let gap = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
    #expect(try failure(rawFile(header: gap, data: eightBytes))?.contains("gap") == true)
    let trailing = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
    #expect(try failure(rawFile(header: trailing, data: eightBytes))?.contains("cover 4") == true)
}

@Test func unknownAndNonFloatDtypesAreRejected() throws {
    let unknown = #"{"a":{"dtype":"F31","shape":[2],"data_offsets":[0,8]}}"#
    #expect(try failure(rawFile(header: unknown, data: eightBytes))?.contains("unknown dtype 'F31'") == true)
    let integer = #"{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#
    #expect(try failure(rawFile(header: integer, data: eightBytes))?.contains("has dtype I64") == true)
}

@Test func missingTensorAndWrongShapeAreReported() throws {
    let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
    #expect(try failure(rawFile(header: header, data: eightBytes), reading: "b")?.contains("'b' is missing") == true)
    #expect(try failure(rawFile(header: header, data: eightBytes), shape: [1, 2])?.contains("has shape [2], expected [1, 2]") == true)
    #expect(try failure(rawFile(header: header, data: eightBytes), shape: [2]) == nil)
}

@Test func malformedEntriesAreRejected() throws {
    let noShape = #"{"a":{"dtype":"F32","data_offsets":[0,8]}}"#
    #expect(try failure(rawFile(header: noShape, data: eightBytes))?.contains("no valid shape") == true)
    let badMetadata = #"{"__metadata__":{"x":1}}"#
    #expect(try failure(rawFile(header: badMetadata, data: []))?.contains("not a string") == true)
}

@Test func missingFileAndDirectoryAreReported() throws {
    let directory = try TestPaths.temporaryDirectory()
    #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(path: directory.appendingPathComponent("nope.safetensors").path) }
    #expect(throws: SafeTensorsError.cannotOpen(path: directory.path, reason: "is a directory")) { try SafeTensorsFile(path: directory.path) }
}

@Test func failedWriteLeavesTheOldFileIntact() throws {
    let path = try TestPaths.temporaryDirectory().appendingPathComponent("keep.safetensors").path
    try Data("old".utf8).write(to: URL(fileURLWithPath: path))
    #expect(throws: SafeTensorsError.self) {
        try AtomicFile.write(to: path) { file in
            try file.append(Data("partial".utf8))
            throw SafeTensorsError.cannotWrite(path: path, reason: "simulated failure")
        }
    }
    #expect(try String(contentsOfFile: path, encoding: .utf8) == "old")
    #expect(try FileManager.default.contentsOfDirectory(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path) == ["keep.safetensors"])
}
