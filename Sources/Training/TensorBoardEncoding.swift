/// CRC-32C (Castagnoli), the checksum of TFRecord framing, with the masking TFRecord applies.
public enum CRC32C {
    private static let table: [UInt32] = (0..<256).map { byte in
        var crc = UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        return crc
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        ~bytes.reduce(~UInt32(0)) { crc, byte in table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
    }

    /// TFRecord stores CRCs rotated and offset, because a CRC computed over data that itself holds
    /// CRCs is weak.
    public static func masked(_ crc: UInt32) -> UInt32 { ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8 }
}

/// The few protobuf encodings a TensorBoard `Event` needs, by hand, so that no protobuf library is
/// needed: field keys and integers as varints, doubles as fixed64, floats as fixed32, strings and
/// nested messages length-delimited.
struct ProtobufMessage {
    private(set) var bytes: [UInt8] = []

    private mutating func varint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    private mutating func key(_ field: Int, wireType: UInt64) { varint(UInt64(field) << 3 | wireType) }

    mutating func int64(_ field: Int, _ value: Int64) {
        key(field, wireType: 0)
        varint(UInt64(bitPattern: value))
    }

    mutating func double(_ field: Int, _ value: Double) {
        key(field, wireType: 1)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 }
    }

    mutating func float(_ field: Int, _ value: Float) {
        key(field, wireType: 5)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 }
    }

    mutating func string(_ field: Int, _ value: String) { lengthDelimited(field, Array(value.utf8)) }

    mutating func message(_ field: Int, _ message: ProtobufMessage) { lengthDelimited(field, message.bytes) }

    private mutating func lengthDelimited(_ field: Int, _ content: [UInt8]) {
        key(field, wireType: 2)
        varint(UInt64(content.count))
        bytes += content
    }
}

/// `tensorboard.Event` and the messages in it, with the field numbers of TensorBoard's event.proto
/// and summary.proto.
enum TensorBoardEvent {
    /// wall_time = 1, step = 2; then what the event carries.
    private static func event(wallTime: Double, step: Int, _ fill: (inout ProtobufMessage) -> Void) -> [UInt8] {
        var event = ProtobufMessage()
        event.double(1, wallTime)
        event.int64(2, Int64(step))
        fill(&event)
        return event.bytes
    }

    /// The first event of every file: file_version = 3, and source_metadata = 10 (its writer = 1),
    /// as TensorBoard's own writer starts a file.
    static func fileVersion(wallTime: Double, writer: String) -> [UInt8] {
        event(wallTime: wallTime, step: 0) { event in
            event.string(3, "brain.Event:2")
            var source = ProtobufMessage()
            source.string(1, writer)
            event.message(10, source)
        }
    }

    /// summary = 5, one Summary.Value (tag = 1, simple_value = 2), as `add_scalar` writes a value.
    static func scalar(wallTime: Double, step: Int, tag: String, value: Float) -> [UInt8] {
        event(wallTime: wallTime, step: step) { event in
            var entry = ProtobufMessage()
            entry.string(1, tag)
            entry.float(2, value)
            var summary = ProtobufMessage()
            summary.message(1, entry)
            event.message(5, summary)
        }
    }

    /// session_log = 7 with status START = 1: TensorBoard then drops the events at `step` and
    /// after that it read before (a run restarted from a checkpoint logs those steps again).
    static func sessionStart(wallTime: Double, step: Int) -> [UInt8] {
        event(wallTime: wallTime, step: step) { event in
            var log = ProtobufMessage()
            log.int64(1, 1)
            event.message(7, log)
        }
    }

    /// TFRecord framing: the length as uint64, the masked CRC-32C of those 8 bytes, the data, the
    /// masked CRC-32C of the data; every number little-endian.
    static func record(_ data: [UInt8]) -> [UInt8] {
        func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
        let length = littleEndian(UInt64(data.count))
        return length + littleEndian(CRC32C.masked(CRC32C.checksum(length))) + data + littleEndian(CRC32C.masked(CRC32C.checksum(data)))
    }
}
