import CMPI
import Foundation

/// The communicator over Open MPI's COMM_WORLD. Errors are set to return rather than abort, and
/// every return code becomes a `CommunicatorError` naming the call and the rank.
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    private let world = cmpi_comm_world()
    private var pending: [MPI_Request?] = []
    /// What the pending collectives need until they complete: the counts and displacements MPI
    /// reads from (which must outlive the call), and the reduce-scatters' moves of this rank's
    /// sum from where it lands to its part.
    private var pendingArrays: [UnsafeMutableBufferPointer<Int32>] = []
    private var pendingMoves: [PartMove] = []
    private var finished = false

    public init() throws {
        var provided: Int32 = 0
        var argc: Int32 = 0
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = nil
        // Serialized: the communication thread calls MPI while the main thread does not.
        let initialised = MPI_Init_thread(&argc, &argv, cmpi_thread_serialized(), &provided)
        guard initialised == cmpi_success() else { throw CommunicatorError(call: "MPI_Init_thread", rank: -1, message: "code \(initialised)") }
        guard provided >= cmpi_thread_serialized() else {
            throw CommunicatorError(call: "MPI_Init_thread", rank: -1, message: "this MPI library does not allow calls from more than one thread (MPI_THREAD_SERIALIZED)")
        }
        MPI_Comm_set_errhandler(world, cmpi_errors_return())
        var rank: Int32 = 0, size: Int32 = 0
        MPI_Comm_rank(world, &rank)
        MPI_Comm_size(world, &size)
        self.rank = Int(rank)
        self.size = Int(size)
    }

    private func check(_ code: Int32, _ call: String) throws {
        guard code != cmpi_success() else { return }
        var text = [CChar](repeating: 0, count: Int(cmpi_max_error_string()) + 1)
        var length: Int32 = 0
        MPI_Error_string(code, &text, &length)
        throw CommunicatorError(call: call, rank: rank, message: String(decoding: text.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }

    /// MPI counts are 32-bit: large buffers go in chunks.
    private func chunks(_ count: Int, _ body: (Int, Int32) throws -> Void) throws {
        var start = 0
        while start < count {
            let length = min(count - start, Int(Int32.max))
            try body(start, Int32(length))
            start += length
        }
    }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        guard let base = buffer.baseAddress else { return }
        try chunks(buffer.count) { start, count in
            try check(MPI_Allreduce(cmpi_in_place(), base + start, count, cmpi_float(), cmpi_sum(), world), "MPI_Allreduce")
        }
    }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) throws {
        guard let base = buffer.baseAddress else { return }
        try chunks(buffer.count) { start, count in
            try check(MPI_Allreduce(cmpi_in_place(), base + start, count, cmpi_double(), cmpi_sum(), world), "MPI_Allreduce")
        }
    }

    public func startAllReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        guard let base = buffer.baseAddress else { return }
        try chunks(buffer.count) { start, count in
            var request: MPI_Request? = cmpi_request_null()
            try check(MPI_Iallreduce(cmpi_in_place(), base + start, count, cmpi_float(), cmpi_sum(), world, &request), "MPI_Iallreduce")
            pending.append(request)
        }
    }

    public func progressReductions() throws -> Bool {
        guard !pending.isEmpty else { return true }
        var done: Int32 = 0
        try check(MPI_Testall(Int32(pending.count), &pending, &done, cmpi_status_ignore()), "MPI_Testall")
        return done != 0
    }

    public func waitForReductions() throws {
        guard !pending.isEmpty else { return }
        try check(MPI_Waitall(Int32(pending.count), &pending, cmpi_status_ignore()), "MPI_Waitall")
        pending.removeAll()
        for move in pendingMoves { move.apply() }
        for array in pendingArrays { array.deallocate() }
        pendingMoves.removeAll()
        pendingArrays.removeAll()
    }

    /// MPI_Reduce_scatter in place leaves this rank's sum at the start of the buffer; it is moved
    /// to the rank's own part afterwards.
    struct PartMove {
        let base: UnsafeMutablePointer<Float>
        let offset: Int
        let count: Int
        func apply() { if offset > 0 && count > 0 { (base + offset).update(from: base, count: count) } }
    }

    private func partCounts(_ buffer: UnsafeMutableBufferPointer<Float>, _ counts: [Int], _ call: String) throws -> (counts: [Int32], part: PartMove)? {
        guard let base = buffer.baseAddress else { return nil }
        guard counts.count == size, counts.reduce(0, +) == buffer.count, buffer.count <= Int(Int32.max) else {
            throw CommunicatorError(call: call, rank: rank, message: "\(counts.count) parts of \(counts.reduce(0, +)) elements for a buffer of \(buffer.count) on \(size) ranks")
        }
        return (counts.map { Int32($0) }, PartMove(base: base, offset: counts[..<rank].reduce(0, +), count: counts[rank]))
    }

    /// Non-blocking even where the caller waits at once: with Open MPI 4.1 on 2 to 4 ranks
    /// MPI_Ireduce_scatter adds in the order MPI_Allreduce does, so ZeRO-1 trains bit for bit like
    /// the replicated optimizer, which the blocking MPI_Reduce_scatter did not on 4 ranks.
    public func startReduceScatterSum(_ buffer: UnsafeMutableBufferPointer<Float>, counts: [Int]) throws {
        guard let (counts32, part) = try partCounts(buffer, counts, "MPI_Ireduce_scatter") else { return }
        let stored = UnsafeMutableBufferPointer<Int32>.allocate(capacity: counts32.count)
        _ = stored.initialize(from: counts32)
        pendingArrays.append(stored)
        pendingMoves.append(part)
        var request: MPI_Request? = cmpi_request_null()
        try check(MPI_Ireduce_scatter(cmpi_in_place(), part.base, stored.baseAddress, cmpi_float(), cmpi_sum(), world, &request), "MPI_Ireduce_scatter")
        pending.append(request)
    }

    public func startAllGather(_ buffer: UnsafeMutableBufferPointer<Float>, counts: [Int]) throws {
        guard let (counts32, part) = try partCounts(buffer, counts, "MPI_Iallgatherv") else { return }
        // Counts and displacements side by side, kept until the call completes.
        let stored = UnsafeMutableBufferPointer<Int32>.allocate(capacity: 2 * size)
        var offset: Int32 = 0
        for (rank, count) in counts32.enumerated() {
            stored[rank] = count
            stored[size + rank] = offset
            offset += count
        }
        pendingArrays.append(stored)
        var request: MPI_Request? = cmpi_request_null()
        try check(MPI_Iallgatherv(cmpi_in_place(), 0, cmpi_float(), part.base, stored.baseAddress, stored.baseAddress! + size, cmpi_float(), world, &request),
                  "MPI_Iallgatherv")
        pending.append(request)
    }

    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {
        guard let base = buffer.baseAddress else { return }
        try chunks(buffer.count) { start, count in
            try check(MPI_Bcast(base + start, count, cmpi_byte(), Int32(root), world), "MPI_Bcast")
        }
    }

    public func allGather(_ value: UInt64) throws -> [UInt64] {
        var mine = value
        var all = [UInt64](repeating: 0, count: size)
        try check(MPI_Allgather(&mine, 8, cmpi_byte(), &all, 8, cmpi_byte(), world), "MPI_Allgather")
        return all
    }

    public func barrier() throws { try check(MPI_Barrier(world), "MPI_Barrier") }

    public func abort(code: Int32) -> Never {
        MPI_Abort(world, code)
        exit(code)
    }

    public func finish() throws {
        guard !finished else { return }
        finished = true
        try check(MPI_Finalize(), "MPI_Finalize")
    }
}
