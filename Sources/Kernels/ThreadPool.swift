import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

extension Kernels {
    /// Threads every kernel splits its work over (≥ 1). Process-wide, because one MPI rank owns a
    /// fixed set of cores; defaults to `availableCoreCount`. Results do not depend on it: work is
    /// split so that every output element is computed by the same operations in the same order.
    public static var threadCount: Int {
        get { configuredThreadCount.load(ordering: .relaxed) }
        set {
            precondition(newValue >= 1, "threadCount must be at least 1")
            configuredThreadCount.store(newValue, ordering: .relaxed)
        }
    }

    private static let configuredThreadCount = Atomic<Int>(availableCoreCount)

    /// `--bf16`: every matrix product rounds its operands to bfloat16 (nearest, ties to even) and
    /// accumulates in fp32, as `torch.autocast("cpu", dtype=torch.bfloat16)` computes them;
    /// everything else stays fp32. Process-wide, as `threadCount` is. Turn it on with
    /// `useBFloat16Products()`, which checks that the CPU has a bfloat16 kernel.
    public static var bfloat16Products: Bool { bfloat16ProductsOn.load(ordering: .relaxed) }

    private static let bfloat16ProductsOn = Atomic<Bool>(false)

    public static func useBFloat16Products(_ on: Bool = true) throws {
        if on && MatrixMultiply.Kernel.selectedBFloat16 == nil {
            let cpu = CPU.current
            throw UnsupportedCPU("--bf16: this CPU (\(cpu.modelName ?? "unknown")) lacks AVX512-BF16, which the bfloat16 products need (it has \(cpu.featureNames.joined(separator: ", ")))")
        }
        bfloat16ProductsOn.store(on, ordering: .relaxed)
    }

    /// The cores this process may run on (its CPU affinity mask), so that `mpirun -np 2` on two
    /// cores, which binds each rank to one core, gives each rank one thread.
    public static let availableCoreCount: Int = {
        #if os(Linux)
        // Glibc declares sched_getaffinity only under _GNU_SOURCE, which Swift's Glibc module lacks.
        typealias GetAffinity = @convention(c) (pid_t, Int, UnsafeMutableRawPointer) -> Int32
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0) /* RTLD_DEFAULT */, "sched_getaffinity") {
            let getAffinity = unsafeBitCast(symbol, to: GetAffinity.self)
            var mask = [UInt64](repeating: 0, count: 16)  // 1024 CPUs, glibc's cpu_set_t
            let count = mask.withUnsafeMutableBytes { bytes in
                getAffinity(0, bytes.count, bytes.baseAddress!) == 0 ? bytes.reduce(0) { $0 + $1.nonzeroBitCount } : 0
            }
            if count > 0 { return count }
        }
        #endif
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

    static let threadPool = ThreadPool()

    /// Runs `body(part)` for part in 0..<parts, spread over the pool's threads, and returns when all
    /// are done. The caller's thread runs part 0.
    static func parallel(parts: Int, _ body: (Int) -> Void) {
        threadPool.run(parts: parts, body)
    }

    /// Splits 0..<count into up to `threadCount` contiguous ranges, each a multiple of `grain` long
    /// except the last and at least `minimumPerThread` long, and runs `body` on each in parallel.
    static func parallelFor(_ count: Int, grain: Int = 1, minimumPerThread: Int = 1, _ body: (Range<Int>) -> Void) {
        let units = (count + grain - 1) / grain
        let parts = max(1, min(threadCount, units, count / max(1, minimumPerThread)))
        guard parts > 1 else {
            if count > 0 { body(0..<count) }
            return
        }
        parallel(parts: parts) { part in
            let range = split(units, parts: parts, part: part)
            let lower = range.lowerBound * grain, upper = min(count, range.upperBound * grain)
            if lower < upper { body(lower..<upper) }
        }
    }

    /// The `part`-th of `parts` nearly equal contiguous pieces of 0..<count.
    static func split(_ count: Int, parts: Int, part: Int) -> Range<Int> {
        (count * part / parts)..<(count * (part + 1) / parts)
    }
}

/// A persistent set of worker threads that run the parts of one parallel region at a time (no
/// thread is created per call). Regions started while another runs, from another thread or from
/// inside a part, run their parts one after another on the calling thread instead.
final class ThreadPool: @unchecked Sendable {  // all mutable state is guarded by `condition`
    private let condition = NSCondition()
    private var workerCount = 0
    private var busy = false
    private var generation = 0
    private var parts = 0
    private var unfinished = 0
    private var body: ((Int) -> Void)?

    func run(parts: Int, _ body: (Int) -> Void) {
        guard parts > 1, claim(parts: parts) else {
            for part in 0..<parts { body(part) }
            return
        }
        withoutActuallyEscaping(body) { body in
            condition.lock()
            self.body = body
            self.parts = parts
            unfinished = parts - 1
            generation += 1
            condition.broadcast()
            condition.unlock()

            body(0)

            condition.lock()
            while unfinished > 0 { condition.wait() }
            self.body = nil
            busy = false
            condition.unlock()
        }
    }

    /// Marks the pool busy and makes sure it has `parts - 1` workers; false if it is already busy.
    private func claim(parts: Int) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !busy else { return false }
        busy = true
        while workerCount < parts - 1 {
            workerCount += 1
            let thread = Thread { [self, index = workerCount] in work(index: index) }
            thread.name = "gpt2-kernels-\(workerCount)"
            thread.start()
        }
        return true
    }

    /// Worker `index` runs part `index` of every region that has that many parts.
    private func work(index: Int) {
        var seen = 0
        condition.lock()
        while true {
            while generation == seen { condition.wait() }
            seen = generation
            guard index < parts, let body else { continue }
            condition.unlock()
            body(index)
            condition.lock()
            unfinished -= 1
            if unfinished == 0 { condition.broadcast() }
        }
    }
}
