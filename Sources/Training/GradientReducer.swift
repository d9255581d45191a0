import Distributed
import Foundation
import GPT2
import Kernels

/// Sums the gradient buffer across ranks in buckets that start while backward still computes
/// the layers below them. Ranges arrive from the top of the buffer down, each adjoining the last;
/// once the pending region holds `bucketSize` elements it goes to the communication thread as one
/// non-blocking allreduce, or under ZeRO-1 (`shards`) as a reduce-scatter that leaves each rank
/// the sum over its shard only; the updated shards then come back in the same buckets
/// (`gatherShards`), the same bytes on the wire as the allreduce.
final class GradientReducer {
    private let communicator: Communicator
    private let gradients: FloatBuffer
    private let shards: ParameterShards?
    private let bucketSize: Int
    private var pendingLowerBound: Int
    private var pendingUpperBound: Int
    /// Started on the first bucket handed over during backward.
    private lazy var thread = CommunicationThread(communicator: communicator)
    /// Seconds spent blocked on communication, for reporting how much the overlap hides.
    private(set) var waitSeconds = 0.0

    init(communicator: Communicator, gradients: FloatBuffer, shards: ParameterShards?, bucketBytes: Int) {
        self.communicator = communicator
        self.gradients = gradients
        self.shards = shards
        self.bucketSize = max(1, bucketBytes / MemoryLayout<Float>.stride)
        pendingLowerBound = gradients.count
        pendingUpperBound = gradients.count
    }

    /// Called by backward for each range whose gradient is final.
    func ready(_ range: Range<Int>) {
        precondition(range.upperBound == pendingLowerBound, "gradient ranges must arrive top down and adjoining")
        pendingLowerBound = range.lowerBound
        if pendingUpperBound - pendingLowerBound >= bucketSize || pendingLowerBound == 0 { send() }
    }

    private func send() {
        guard pendingLowerBound < pendingUpperBound else { return }
        let bucket = pendingLowerBound..<pendingUpperBound
        thread.submit { [communicator, gradients, shards] in
            if let shards {
                try communicator.startReduceScatterSum(gradients.slice(bucket), counts: shards.counts(in: bucket))
            } else {
                try communicator.startAllReduceSum(gradients.slice(bucket))
            }
        }
        pendingUpperBound = pendingLowerBound
    }

    /// The buffer's consecutive buckets, for the blocking exchanges.
    private var buckets: [Range<Int>] {
        stride(from: 0, to: gradients.count, by: bucketSize).map { $0..<min($0 + bucketSize, gradients.count) }
    }

    /// Waits for every bucket; afterwards the buffer holds the sum over all ranks.
    func finish() throws {
        precondition(pendingLowerBound == 0, "backward did not report the whole buffer")
        let start = Date()
        try thread.drain()
        waitSeconds += Date().timeIntervalSince(start)
        pendingLowerBound = gradients.count
        pendingUpperBound = gradients.count
    }

    /// The whole buffer after backward, in the same buckets, each a blocking allreduce (one
    /// call over all of it is slower: Open MPI stages a message that large through fresh
    /// memory): the reference the overlap is measured against.
    ///
    /// Under ZeRO-1 most buckets lie within one rank's shard, so each one alone would send in one
    /// direction only (to its owner); all of them are started at once instead and completed
    /// together, so that every link carries data both ways, as an allreduce's does.
    func reduceAll() throws {
        let start = Date()
        for bucket in buckets {
            if let shards {
                try communicator.startReduceScatterSum(gradients.slice(bucket), counts: shards.counts(in: bucket))
            } else {
                try communicator.allReduceSum(gradients.slice(bucket))
            }
        }
        try communicator.waitForReductions()
        waitSeconds += Date().timeIntervalSince(start)
    }

    /// Under ZeRO-1, every rank's shard of `buffer` (the updated parameters, or a moment being
    /// saved; laid out like the gradients) to every rank, bucket by bucket, all started at once
    /// (as in `reduceAll`).
    func gatherShards(of buffer: FloatBuffer) throws {
        guard let shards else { return }
        let start = Date()
        for bucket in buckets { try communicator.startAllGather(buffer.slice(bucket), counts: shards.counts(in: bucket)) }
        try communicator.waitForReductions()
        waitSeconds += Date().timeIntervalSince(start)
    }
}
