import Foundation

/// A TensorBoard event file read back byte by byte, independently of the writer in Training (its
/// own bit-at-a-time CRC and protobuf decoding), so that a test of the writer is not the writer
/// checking itself.
public struct TensorBoardEventFile {
    public struct Scalar: Equatable {
        public let tag: String
        public let value: Float
    }

    public struct Event {
        public let wallTime: Double
        public let step: Int
        public let fileVersion: String?
        /// source_metadata.writer
        public let writer: String?
        public let scalars: [Scalar]
        /// session_log.status (1: START), when the event is a session log.
        public let sessionStatus: UInt64?
    }

    public struct Corrupt: Error, CustomStringConvertible {
        public let description: String
    }

    public let events: [Event]

    /// Reads every record, checking the masked CRC-32C of each length and of each record's data.
    public init(path: String) throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var offset = 0, events: [Event] = []
        func littleEndian(_ start: Int, _ count: Int) -> UInt64 {
            (0..<count).reduce(UInt64(0)) { $0 | UInt64(bytes[start + $1]) << (8 * UInt64($1)) }
        }
        while offset < bytes.count {
            guard offset + 12 <= bytes.count else { throw Corrupt(description: "\(path): a torn record header at byte \(offset)") }
            let length = Int(littleEndian(offset, 8))
            guard UInt32(littleEndian(offset + 8, 4)) == Self.maskedCRC32C(bytes[offset..<(offset + 8)]) else {
                throw Corrupt(description: "\(path): the length CRC of the record at byte \(offset) does not match")
            }
            let data = offset + 12
            guard data + length + 4 <= bytes.count else { throw Corrupt(description: "\(path): a torn record at byte \(offset)") }
            guard UInt32(littleEndian(data + length, 4)) == Self.maskedCRC32C(bytes[data..<(data + length)]) else {
                throw Corrupt(description: "\(path): the data CRC of the record at byte \(offset) does not match")
            }
            events.append(try Self.event(bytes[data..<(data + length)]))
            offset = data + length + 4
        }
        self.events = events
    }

    /// CRC-32C one bit at a time (reflected polynomial 0x82F63B78).
    public static func crc32c<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        var crc = ~UInt32(0)
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc >> 1) ^ (crc & 1 == 1 ? 0x82F6_3B78 : 0) }
        }
        return ~crc
    }

    static func maskedCRC32C(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        let crc = crc32c(bytes)
        return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }

    /// A protobuf message's fields by number: varints, fixed64, fixed32 and length-delimited bytes.
    struct Fields {
        var varints: [Int: [UInt64]] = [:], fixed64: [Int: [UInt64]] = [:], fixed32: [Int: [UInt32]] = [:], bytes: [Int: [ArraySlice<UInt8>]] = [:]

        init(_ message: ArraySlice<UInt8>) throws {
            var index = message.startIndex
            func varint() throws -> UInt64 {
                var value: UInt64 = 0, shift: UInt64 = 0
                while true {
                    guard index < message.endIndex, shift < 64 else { throw Corrupt(description: "a varint runs past its message") }
                    let byte = message[index]
                    index += 1
                    value |= UInt64(byte & 0x7F) << shift
                    if byte < 0x80 { return value }
                    shift += 7
                }
            }
            func take(_ count: Int) throws -> ArraySlice<UInt8> {
                guard count >= 0, index + count <= message.endIndex else { throw Corrupt(description: "a field runs past its message") }
                defer { index += count }
                return message[index..<(index + count)]
            }
            func littleEndian(_ slice: ArraySlice<UInt8>) -> UInt64 {
                slice.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
            }
            while index < message.endIndex {
                let key = try varint()
                let field = Int(key >> 3)
                switch key & 7 {
                case 0: varints[field, default: []].append(try varint())
                case 1: fixed64[field, default: []].append(littleEndian(try take(8)))
                case 2: bytes[field, default: []].append(try take(Int(try varint())))
                case 5: fixed32[field, default: []].append(UInt32(littleEndian(try take(4))))
                default: throw Corrupt(description: "wire type \(key & 7) of field \(field) is not one an Event uses")
                }
            }
        }

        func string(_ field: Int) -> String? { bytes[field]?.last.map { String(decoding: $0, as: UTF8.self) } }
    }

    /// `tensorboard.Event`: wall_time 1, step 2, file_version 3, summary 5 (value 1: tag 1,
    /// simple_value 2), session_log 7 (status 1), source_metadata 10 (writer 1).
    static func event(_ data: ArraySlice<UInt8>) throws -> Event {
        let fields = try Fields(data)
        let scalars = try (fields.bytes[5] ?? []).flatMap { summary in
            try (Fields(summary).bytes[1] ?? []).map { value in
                let entry = try Fields(value)
                return Scalar(tag: entry.string(1) ?? "", value: Float(bitPattern: entry.fixed32[2]?.last ?? 0))
            }
        }
        return Event(wallTime: Double(bitPattern: fields.fixed64[1]?.last ?? 0), step: Int(Int64(bitPattern: fields.varints[2]?.last ?? 0)),
                     fileVersion: fields.string(3), writer: try fields.bytes[10]?.last.flatMap { try Fields($0).string(1) },
                     scalars: scalars, sessionStatus: try fields.bytes[7]?.last.map { try Fields($0).varints[1]?.last ?? 0 })
    }

    /// What TensorBoard shows from the event files of one folder, read in name order: the scalars
    /// as (tag, step, value), with those a SessionLog START at step S drops (every event read
    /// before it at step S or later), as EventAccumulator purges orphaned data.
    public static func shownScalars(inFolder directory: URL) throws -> [(tag: String, step: Int, value: Float)] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix("events.out.tfevents.") }.sorted()
        var shown: [(tag: String, step: Int, value: Float)] = []
        for name in names {
            for event in try TensorBoardEventFile(path: directory.appendingPathComponent(name).path).events {
                if event.sessionStatus == 1 { shown.removeAll { $0.step >= event.step } }
                shown += event.scalars.map { ($0.tag, event.step, $0.value) }
            }
        }
        return shown
    }
}
