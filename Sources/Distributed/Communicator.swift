import Foundation

/// The ranks of a data-parallel job and the collective operations they share. Everything above
/// this protocol is written once and runs unchanged on one process or on many.
public protocol Communicator: AnyObject {
    var rank: Int { get }
    var size: Int { get }
    /// Sums `buffer` element-wise across all ranks, in place: every rank ends with the same total.
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) throws
    /// Starts an in-place sum that completes in `waitForReductions()`; `progressReductions()`
    /// lets the library move the pending ones along, and says whether all have completed.
    func startAllReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws
    func progressReductions() throws -> Bool
    func waitForReductions() throws
    /// Starts a sum of `buffer` across ranks that leaves each rank only the sum over its own part:
    /// `counts[r]` elements for rank r, the parts in rank order covering the buffer. After
    /// `waitForReductions()` this rank's part holds the total; the other parts hold nothing of use.
    func startReduceScatterSum(_ buffer: UnsafeMutableBufferPointer<Float>, counts: [Int]) throws
    /// The inverse: every rank's part of `buffer` (laid out as for `startReduceScatterSum`) copied to
    /// every other rank, in place; completed by `waitForReductions()`.
    func startAllGather(_ buffer: UnsafeMutableBufferPointer<Float>, counts: [Int]) throws
    /// Copies `buffer` from rank `root` to every other rank.
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws
    /// Every rank's `value`, in rank order, on every rank.
    func allGather(_ value: UInt64) throws -> [UInt64]
    func barrier() throws
    /// Ends the whole job at once (every rank), with `code` as the exit status.
    func abort(code: Int32) -> Never
    /// Leaves the job cleanly; no collective may follow.
    func finish() throws
}

public struct CommunicatorError: Error, CustomStringConvertible {
    public let call: String
    public let rank: Int
    public let message: String
    public var description: String { "rank \(rank): \(call) failed: \(message)" }
}

extension Communicator {
    public var isMain: Bool { rank == 0 }

    /// Sums a few doubles across ranks (losses, token counts).
    public func sum(_ values: [Double]) throws -> [Double] {
        var values = values
        try values.withUnsafeMutableBufferPointer { try allReduceSum($0) }
        return values
    }

    /// Rank `root`'s bytes on every rank (the length travels first).
    public func broadcast(_ data: Data, root: Int = 0) throws -> Data {
        var length = UInt64(data.count)
        try withUnsafeMutableBytes(of: &length) { try broadcast($0, root: root) }
        var bytes = rank == root ? [UInt8](data) : [UInt8](repeating: 0, count: Int(length))
        try bytes.withUnsafeMutableBytes { try broadcast($0, root: root) }
        return Data(bytes)
    }

    /// Every rank's bytes, in rank order, on every rank (one broadcast per rank: for small messages).
    public func allGather(_ data: Data) throws -> [Data] {
        try (0..<size).map { root in try broadcast(data, root: root) }
    }

    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int = 0) throws {
        try broadcast(UnsafeMutableRawBufferPointer(buffer), root: root)
    }
}

/// A world of one: every collective is the identity, and no MPI library is touched, so a plain
/// `swift run` or a debugger works.
public final class SingleProcessCommunicator: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {}
    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) throws {}
    public func startAllReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {}
    public func progressReductions() throws -> Bool { true }
    public func waitForReductions() throws {}
    public func startReduceScatterSum(_ buffer: UnsafeMutableBufferPointer<Float>, counts: [Int]) throws {}
    public func startAllGather(_ buffer: UnsafeMutableBufferPointer<Float>, counts: [Int]) throws {}
    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {}
    public func allGather(_ value: UInt64) throws -> [UInt64] { [value] }
    public func barrier() throws {}
    public func abort(code: Int32) -> Never { exit(code) }
    public func finish() throws {}
}

public enum World {
    /// Whether this process was started by an MPI launcher (mpirun, srun) as one of its ranks.
    public static var isLaunchedByMPI: Bool {
        let environment = ProcessInfo.processInfo.environment
        return ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"].contains { environment[$0] != nil }
    }

    /// The MPI world under a launcher, otherwise a world of one that makes no MPI call at all.
    public static func join() throws -> Communicator {
        isLaunchedByMPI ? try MPICommunicator() : SingleProcessCommunicator()
    }
}
