import Distributed
import Foundation
import GPT2

/// Sums the gradient buffer across ranks in buckets that start while backward still computes
/// the layers below them. Ranges arrive from the top of the buffer down, each adjoining the last;
/// once the pending region holds `bucketSize` elements it goes out as one non-blocking allreduce.
final class GradientReducer {
    private let communicator: Communicator
    private let gradients: FloatBuffer
    private let bucketSize: Int
    private var pendingLowerBound: Int
    private var pendingUpperBound: Int
    /// Seconds spent blocked on communication, for reporting how much the overlap hides.
    private(set) var waitSeconds = 0.0

    init(communicator: Communicator, gradients: FloatBuffer, bucketBytes: Int) {
        self.communicator = communicator
        self.gradients = gradients
        self.bucketSize = max(1, bucketBytes / MemoryLayout<Float>.stride)
        pendingLowerBound = gradients.count
        pendingUpperBound = gradients.count
    }

    /// Called by backward for each range whose gradient is final.
    func ready(_ range: Range<Int>) throws {
        precondition(range.upperBound == pendingLowerBound, "gradient ranges must arrive top down and adjoining")
        pendingLowerBound = range.lowerBound
        if pendingUpperBound - pendingLowerBound >= bucketSize || pendingLowerBound == 0 { try send() }
        try communicator.progressReductions()
    }

    private func send() throws {
        guard pendingLowerBound < pendingUpperBound else { return }
        try communicator.startAllReduceSum(UnsafeMutableBufferPointer(start: gradients.pointer + pendingLowerBound,
                                                                      count: pendingUpperBound - pendingLowerBound))
        pendingUpperBound = pendingLowerBound
    }

    /// Waits for every bucket; afterwards the buffer holds the sum over all ranks.
    func finish() throws {
        precondition(pendingLowerBound == 0, "backward did not report the whole buffer")
        let start = Date()
        try communicator.waitForReductions()
        waitSeconds += Date().timeIntervalSince(start)
        pendingLowerBound = gradients.count
        pendingUpperBound = gradients.count
    }

    /// The whole buffer after backward, in the same buckets, each a blocking allreduce (one
    /// call over all of it is slower: Open MPI stages a message that large through fresh
    /// memory): the reference the overlap is measured against.
    func reduceAll() throws {
        let start = Date()
        var lower = 0
        while lower < gradients.count {
            let count = min(bucketSize, gradients.count - lower)
            try communicator.allReduceSum(UnsafeMutableBufferPointer(start: gradients.pointer + lower, count: count))
            lower += count
        }
        waitSeconds += Date().timeIntervalSince(start)
    }
}
