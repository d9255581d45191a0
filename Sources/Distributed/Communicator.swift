/// The ranks of a data-parallel job and the collective operations they share. Everything above
/// this protocol is written once and runs unchanged on one process or on many.
public protocol Communicator: AnyObject {
    var rank: Int { get }
    var size: Int { get }
    /// Sums `buffer` element-wise across all ranks, in place: every rank ends with the total.
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) throws
    /// Copies `buffer` from rank `root` to every other rank.
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws
    func barrier() throws
}

extension Communicator {
    public var isMain: Bool { rank == 0 }

    /// Sums a few doubles across ranks (losses, token counts).
    public func sum(_ values: [Double]) throws -> [Double] {
        var values = values
        try values.withUnsafeMutableBufferPointer { try allReduceSum($0) }
        return values
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
    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {}
    public func barrier() throws {}
}
