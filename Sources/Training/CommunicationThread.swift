import Distributed
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The thread that drives the gradient buckets while backward computes: Open MPI moves a
/// non-blocking collective only inside MPI calls, so from the compute thread (one call per
/// layer) it hid nothing. This thread starts each bucket it is handed and polls the pending
/// collectives until they complete, sleeping between polls so that it takes little from the
/// compute threads. The compute thread makes no MPI call from the first hand-over until
/// `drain()` returns, so MPI_THREAD_SERIALIZED is all it needs.
final class CommunicationThread: @unchecked Sendable {  // every field is guarded by `condition`
    private let communicator: Communicator
    private let condition = NSCondition()
    private var queue: [() throws -> Void] = []
    private var draining = false
    private var failure: Error?
    /// How long the thread sleeps between polls while collectives are pending: at 10 Gb/s the
    /// socket buffers hold far more than 50 µs of data, so the link never waits on a poll.
    private static let pollMicroseconds: UInt32 = 50

    init(communicator: Communicator) {
        self.communicator = communicator
        // The thread keeps this object alive: it waits on `condition` for the life of the process.
        let thread = Thread { self.run() }
        thread.name = "gpt2-ddp communication"
        thread.start()
    }

    /// Hands over the start of a collective; it runs on the communication thread.
    func submit(_ start: @escaping () throws -> Void) {
        condition.lock()
        queue.append(start)
        condition.signal()
        condition.unlock()
    }

    /// Waits until every collective handed over has completed (or one failed: its error is
    /// rethrown here); the caller may call MPI again afterwards.
    func drain() throws {
        condition.lock()
        draining = true
        condition.signal()
        while draining { condition.wait() }
        let error = failure
        failure = nil
        condition.unlock()
        if let error { throw error }
    }

    private func run() {
        var pending = false
        while true {
            condition.lock()
            while queue.isEmpty && !draining && !pending { condition.wait() }
            let work = queue
            queue.removeAll()
            condition.unlock()
            do {
                for start in work { try start() }
                pending = !(try communicator.progressReductions())
                if pending {
                    usleep(Self.pollMicroseconds)
                    continue
                }
                // While draining the compute thread hands nothing over, so the queue stays empty.
                condition.lock()
                let finishing = draining && queue.isEmpty
                condition.unlock()
                guard finishing else { continue }
                try communicator.waitForReductions()  // nothing left to wait for: completes the buckets' moves
                condition.lock()
                draining = false
                condition.broadcast()
                condition.unlock()
            } catch {
                condition.lock()
                failure = failure ?? error
                queue.removeAll()
                pending = false
                if draining {
                    draining = false
                    condition.broadcast()
                }
                condition.unlock()
            }
        }
    }
}
