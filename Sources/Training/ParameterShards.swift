/// ZeRO-1's split of the flat parameter buffer: rank r owns one contiguous range, whose gradient
/// sum it receives, whose AdamW moments it holds and whose update it computes and sends to the
/// others. The ranges are in rank order, cover the buffer and start on 64-byte boundaries (16
/// floats), so that the vector kernels see the same alignment as on the whole buffer.
public struct ParameterShards: Sendable, Equatable {
    public let ranges: [Range<Int>]

    public init(count: Int, ranks: Int) {
        precondition(ranks > 0 && count >= 0)
        let alignment = 16
        let bounds = (0...ranks).map { r in r == ranks ? count : min(count, count / ranks * r / alignment * alignment) }
        ranges = (0..<ranks).map { bounds[$0]..<bounds[$0 + 1] }
    }

    /// How many elements of `range` each rank owns, in rank order: the counts a reduce-scatter
    /// or all-gather of that part of the buffer takes.
    public func counts(in range: Range<Int>) -> [Int] {
        ranges.map { $0.clamped(to: range).count }
    }
}
