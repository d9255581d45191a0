import CKernels
import Foundation

/// A matrix read through strides: element (row, column) is at base[row·rowStride + column·columnStride].
/// A row-major [rows, columns] matrix has strides (columns, 1); its transpose, strides (1, columns).
struct StridedMatrix {
    var base: UnsafePointer<Float>
    var rowStride: Int
    var columnStride: Int

    static func rowMajor(_ base: UnsafePointer<Float>, leadingDimension: Int, transposed: Bool) -> StridedMatrix {
        transposed ? StridedMatrix(base: base, rowStride: 1, columnStride: leadingDimension)
                   : StridedMatrix(base: base, rowStride: leadingDimension, columnStride: 1)
    }

    var transposed: StridedMatrix { StridedMatrix(base: base, rowStride: columnStride, columnStride: rowStride) }

    func offset(row: Int, column: Int) -> StridedMatrix {
        StridedMatrix(base: base + row * rowStride + column * columnStride, rowStride: rowStride, columnStride: columnStride)
    }
}

/// What C starts from before the product is added.
public enum MatrixMultiplyStart {
    case zero
    case accumulate
    /// Every row of C starts as this row vector (a linear layer's bias), n floats.
    case rowVector(UnsafePointer<Float>)
}

/// C[m, n] = start + A[m, k]·B[k, n] for strided A and B and row-major C (leading dimension ldc),
/// in the GotoBLAS/BLIS scheme. B is packed in kc×nc blocks as panels `nr` columns wide; then for
/// every `mr` rows of A, those rows are packed as one panel and a register-blocked micro-kernel
/// multiplies it by each B panel in turn. Packing is where the three variants (A·B, Aᵀ·B, A·Bᵀ)
/// differ; the micro-kernel is the same for all.
///
/// Where the data sits: the packed B block (kc × nc, three quarters of the core's L2) in L2, read
/// front to back once per A panel; the A panel (mr × kc) in L1 for its whole sweep; C is walked
/// along its rows, so each of the tile's rows is a sequential stream that the hardware prefetcher
/// follows (walking down C's columns instead, as BLIS does, stalls on C's cache misses).
///
/// Every micro-kernel computes each element of C as one fused multiply-add per step of the depth,
/// in order, from the same start, so every kernel, blocking and thread split gives the same bits.
enum MatrixMultiply {
    /// A micro-kernel and the blocking around it: the tile is mr rows × nr columns of accumulators.
    struct Kernel: Sendable {
        enum Path: String, CaseIterable, Sendable {
            /// 6 × 16 in Swift: 12 AVX2 registers (of 16), 8 loads per 12 FMAs.
            case avx2
            /// 12 × 32 in C (CKernels): 24 ZMM registers (of 32), 14 loads per 24 FMAs.
            case avx512
            /// bfloat16 operands (rounded to nearest even while packing), fp32 accumulators: the
            /// 12 × 32 tile with VDPBF16PS, two steps of the depth per instruction.
            case avx512bf16

            /// Whether the path rounds its operands to bfloat16.
            var bfloat16: Bool { self == .avx512bf16 }
        }
        let path: Path
        let mr: Int
        let nr: Int
        /// The depth of one pass over C (read and written once per kc multiply-adds).
        let kc: Int
        /// Columns of a packed B block.
        let nc: Int

        init(_ path: Path, cpu: CPU = .current) {
            self.path = path
            (mr, nr) = switch path {
            case .avx2: (6, 16)
            case .avx512, .avx512bf16: (Int(CKERNELS_AVX512_MR), Int(CKERNELS_AVX512_NR))
            }
            kc = 256
            // The packed B block fills three quarters of L2 (768 columns, GPT-2 124M's narrow
            // products whole, on a 1 MB L2), rounded to whole panels.
            let l2 = cpu.l2Bytes ?? 1 << 20
            nc = max(nr, min(4096, l2 * 3 / 4 / (kc * MemoryLayout<Float>.size) / nr * nr))
        }

        /// Whether this CPU can run the path.
        static func available(_ path: Path, cpu: CPU = .current) -> Bool {
            switch path {
            case .avx2: cpu.avx2FMA
            case .avx512: cpu.avx512
            case .avx512bf16: cpu.avx512BF16
            }
        }

        /// Packs operand panels for this kernel (floats, or bfloat16 pairs).
        @inline(__always)
        func pack(_ source: StridedMatrix, count: Int, depth: Int, panelWidth: Int, into packed: UnsafeMutablePointer<Float>) {
            if path.bfloat16 { MatrixMultiply.packPairs(source, count: count, depth: depth, panelWidth: panelWidth, into: packed) }
            else { MatrixMultiply.packFloats(source, count: count, depth: depth, panelWidth: panelWidth, into: packed) }
        }

        /// Packed floats (or bfloat16 pairs, one word of 4 bytes each) along a depth of `depth`.
        func packedDepth(_ depth: Int) -> Int { path.bfloat16 ? (depth + 1) / 2 : depth }

        /// The path `GPT2_DDP_MATMUL` names, if any; an unknown name or a path this CPU lacks is an error.
        static func forced(environment: [String: String] = ProcessInfo.processInfo.environment, cpu: CPU = .current) throws -> Path? {
            guard let name = environment[environmentVariable], !name.isEmpty else { return nil }
            let float32Paths = Path.allCases.filter { !$0.bfloat16 }
            guard let path = Path(rawValue: name), float32Paths.contains(path) else {
                throw UnsupportedCPU("\(environmentVariable)=\(name): not a matmul path (\(float32Paths.map(\.rawValue).joined(separator: ", ")))")
            }
            guard available(path, cpu: cpu) else {
                throw UnsupportedCPU("\(environmentVariable)=\(name): this CPU (\(cpu.modelName ?? "unknown")) cannot run it (it has \(cpu.featureNames.joined(separator: ", ")))")
            }
            return path
        }

        static let environmentVariable = "GPT2_DDP_MATMUL"

        /// The kernel every product uses: the forced one, else the faster of those the CPU has,
        /// by measurement (a 512-bit FMA is worth two 256-bit ones on Intel's server cores and
        /// on Zen 5, one on Zen 4, whose 512-bit units are two 256-bit halves).
        static let selected: Kernel = {
            if let path = try? forced() { return Kernel(path) }
            let candidates = Path.allCases.filter { !$0.bfloat16 && available($0) }.map { Kernel($0) }
            guard candidates.count > 1 else { return candidates.first ?? Kernel(.avx2) }
            return candidates.map { ($0, $0.measuredGFLOPS()) }.max { $0.1 < $1.1 }!.0
        }()

        /// The kernel of `--bf16`'s products; nil when the CPU has no bfloat16 path.
        static let selectedBFloat16: Kernel? = available(.avx512bf16) ? Kernel(.avx512bf16) : nil

        /// What every product uses unless a caller names a kernel: the bfloat16 kernel while
        /// `Kernels.bfloat16Products` is on, else the fp32 one.
        static var current: Kernel { Kernels.bfloat16Products ? selectedBFloat16! : selected }

        /// Multiply-adds per second of one tile sweep over a packed block in cache (a few ms).
        func measuredGFLOPS() -> Double {
            let columns = 8 * nr
            let a = FloatBuffer(count: kc * mr), b = FloatBuffer(count: kc * columns), c = FloatBuffer(count: mr * columns)
            // (Read as bfloat16 pairs by the bfloat16 kernel: small normal numbers either way.)
            for i in 0..<a.count { a[i] = 1e-3 * Float(i % 7) }
            for i in 0..<b.count { b[i] = 1e-3 * Float(i % 5) }
            var best = Double.infinity
            for _ in 0..<40 {
                let begin = DispatchTime.now().uptimeNanoseconds
                for jr in stride(from: 0, to: columns, by: nr) {
                    run(depth: kc, a: a.pointer, b: b.pointer + jr * packedDepth(kc), c: c.pointer + jr, ldc: columns, start: .zero)
                }
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - begin))
            }
            return Double(2 * kc * mr * columns) / best
        }

        /// C's full mr × nr tile = start + the packed A panel · the packed B panel (floats, or for
        /// the bfloat16 path the pairs `pack` stores in float-sized words).
        @inline(__always)
        func run(depth: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int,
                 start: MatrixMultiplyStart) {
            // The C kernels' start: 0 zero, 1 accumulate, 2 every row = `row`.
            let (startCode, row): (Int32, UnsafePointer<Float>?) = switch start {
            case .zero: (0, nil)
            case .accumulate: (1, nil)
            case .rowVector(let row): (2, row)
            }
            switch path {
            case .avx2: MatrixMultiply.microKernel(depth: depth, a: a, b: b, c: c, ldc: ldc, start: start)
            case .avx512: ckernels_sgemm_avx512_12x32(Int64(depth), a, b, c, Int64(ldc), startCode, row)
            case .avx512bf16:
                ckernels_sgemm_avx512bf16_12x32(Int64(packedDepth(depth)), UnsafeRawPointer(a).assumingMemoryBound(to: UInt32.self),
                                                UnsafeRawPointer(b).assumingMemoryBound(to: UInt32.self), c, Int64(ldc), startCode, row)
            }
        }
    }

    /// Splits the product over `threads` threads, or, when nil, over as many of `Kernels.threadCount`
    /// as give each at least a million multiply-adds (less is not worth waking a thread for).
    /// Callers that are already one part of a parallel region pass 1.
    static func multiply(m: Int, n: Int, k: Int, a: StridedMatrix, b: StridedMatrix,
                         c: UnsafeMutablePointer<Float>, ldc: Int, start: MatrixMultiplyStart, threads: Int? = nil,
                         kernel: Kernel = .current) {
        let (mr, nr) = (kernel.mr, kernel.nr)
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            for i in 0..<m { fill(c + i * ldc, count: n, start: start) }
            return
        }
        // Each thread computes a block of C on its own (its own packing, no synchronisation),
        // splitting the longer side so that the operand every thread packs whole is the smaller.
        let splitColumns = n >= m
        let tiles = splitColumns ? (n + nr - 1) / nr : (m + mr - 1) / mr
        let parts = max(1, min(threads ?? min(Kernels.threadCount, (m * n * k) >> 20), tiles))
        Kernels.parallel(parts: parts) { part in
            let share = Kernels.split(tiles, parts: parts, part: part)
            if splitColumns {
                let j0 = share.lowerBound * nr, j1 = min(n, share.upperBound * nr)
                multiplyBlock(m: m, n: j1 - j0, k: k, a: a, b: b.offset(row: 0, column: j0), c: c + j0, ldc: ldc,
                              start: start.offset(by: j0), kernel: kernel)
            } else {
                let i0 = share.lowerBound * mr, i1 = min(m, share.upperBound * mr)
                multiplyBlock(m: i1 - i0, n: n, k: k, a: a.offset(row: i0, column: 0), b: b, c: c + i0 * ldc, ldc: ldc, start: start,
                              kernel: kernel)
            }
        }
    }

    /// One thread's share: the blocking loops around the micro-kernel. When C is wider than one
    /// B block (the tied head's 50,257 columns), A's panels for a depth block are packed once and
    /// swept by every B block, not packed again for each.
    private static func multiplyBlock(m: Int, n: Int, k: Int, a: StridedMatrix, b: StridedMatrix,
                                      c: UnsafeMutablePointer<Float>, ldc: Int, start: MatrixMultiplyStart, kernel: Kernel) {
        guard m > 0, n > 0 else { return }
        let (mr, nr, kc, nc) = (kernel.mr, kernel.nr, kernel.kc, kernel.nc)
        let packedBCount = kernel.packedDepth(min(kc, k)) * roundUp(min(nc, n), to: nr)
        let packsAOnce = n > nc, panelCount = kernel.packedDepth(min(kc, k)) * mr
        let packedACount = packsAOnce ? (m + mr - 1) / mr * panelCount : panelCount
        ScratchSpace.with(count: packedBCount + packedACount) { scratch in
            let packedB = scratch, packedA = scratch + packedBCount
            for p0 in stride(from: 0, to: k, by: kc) {
                let depth = min(kc, k - p0)
                if packsAOnce {
                    for i0 in stride(from: 0, to: m, by: mr) {
                        kernel.pack(a.offset(row: i0, column: p0), count: min(mr, m - i0), depth: depth, panelWidth: mr,
                                    into: packedA + i0 / mr * panelCount)
                    }
                }
                for j0 in stride(from: 0, to: n, by: nc) {
                    let columns = min(nc, n - j0)
                    // B's block as panels of nr columns: the transpose of "columns × depth".
                    kernel.pack(b.offset(row: p0, column: j0).transposed, count: columns, depth: depth, panelWidth: nr, into: packedB)
                    let blockStart = p0 == 0 ? start.offset(by: j0) : .accumulate
                    for i0 in stride(from: 0, to: m, by: mr) {
                        let rows = min(mr, m - i0)
                        let panel = packsAOnce ? packedA + i0 / mr * panelCount : packedA
                        // Otherwise A's panel is packed just before its sweep, so the sweep reads it from L1.
                        if !packsAOnce { kernel.pack(a.offset(row: i0, column: p0), count: rows, depth: depth, panelWidth: mr, into: panel) }
                        for jr in stride(from: 0, to: columns, by: nr) {
                            tile(depth: depth, a: panel, b: packedB + jr * kernel.packedDepth(depth), c: c + i0 * ldc + j0 + jr, ldc: ldc,
                                 rows: rows, columns: min(nr, columns - jr), start: blockStart.offset(by: jr), kernel: kernel)
                        }
                    }
                }
            }
        }
    }

    /// Packs `count` rows × `depth` columns of `source` as bfloat16 (nearest, ties to even) into
    /// panels of `panelWidth` rows, two columns to a 4-byte word: word (q, r) of a panel holds
    /// columns 2q (low half) and 2q + 1 (high half) of its row r, the pairs VDPBF16PS multiplies;
    /// zero past `count` and past `depth`. The words are stored as the floats with their bits.
    fileprivate static func packPairs(_ source: StridedMatrix, count: Int, depth: Int, panelWidth width: Int, into packed: UnsafeMutablePointer<Float>) {
        let pairs = (depth + 1) / 2, fullPairs = depth / 2, panels = (count + width - 1) / width
        if source.rowStride == 1 {
            // Each column's rows are adjacent: two whole columns make one word row of every panel,
            // 16, 8 or 4 words at a time, so memory is read in order (as packFloats does).
            for p in 0..<pairs {
                let low = source.base + 2 * p * source.columnStride, high = 2 * p + 1 < depth ? low + source.columnStride : nil
                for q in 0..<panels {
                    let r0 = q * width, rows = min(width, count - r0), to = packed + q * width * pairs + p * width
                    var r = 0
                    while r + 16 <= rows { storeWords(low + r0 + r, high.map { $0 + r0 + r }, to + r, as: SIMD16<UInt32>.self); r += 16 }
                    if r + 8 <= rows { storeWords(low + r0 + r, high.map { $0 + r0 + r }, to + r, as: SIMD8<UInt32>.self); r += 8 }
                    if r + 4 <= rows { storeWords(low + r0 + r, high.map { $0 + r0 + r }, to + r, as: SIMD4<UInt32>.self); r += 4 }
                    for r in r..<rows { to[r] = pairWord(source.base + r0 + r, p, columnStride: source.columnStride, depth: depth) }
                }
            }
        } else {
            for q in 0..<panels {
                let panel = packed + q * width * pairs, rows = min(width, count - q * width)
                let origin = source.base + q * width * source.rowStride
                if source.columnStride == 1 {
                    // Each row is contiguous along the depth: four rows at a time, their words are
                    // made 8 at a time into rows on the stack, then copied to their places, four
                    // adjacent words a panel row apart. (Made and scattered in one loop, the compiler
                    // turns the rounding into scalar code whose length hides no cache miss; four rows
                    // read side by side keep four lines in flight.)
                    withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 4 * pairs) { buffer in
                        let words = buffer.baseAddress!
                        for r0 in stride(from: 0, to: rows, by: 4) {
                            let group = min(4, rows - r0), first = origin + r0 * source.rowStride
                            var p = 0
                            while p + 8 <= fullPairs {
                                for g in 0..<group {
                                    let rounded = bfloat16High(unsafeBitCast(load16(first + g * source.rowStride + 2 * p), to: SIMD16<UInt32>.self))
                                    UnsafeMutableRawPointer(words + g * pairs + p).storeBytes(of: rounded.evenHalf &>> 16 | rounded.oddHalf,
                                                                                             as: SIMD8<UInt32>.self)
                                }
                                p += 8
                            }
                            for g in 0..<group {
                                for p in p..<pairs { words[g * pairs + p] = pairWord(first + g * source.rowStride, p, columnStride: 1, depth: depth).bitPattern }
                            }
                            let to = UnsafeMutableRawPointer(panel + r0)
                            if group == 4 {
                                for p in 0..<pairs {
                                    let four = SIMD4(words[p], words[pairs + p], words[2 * pairs + p], words[3 * pairs + p])
                                    (to + 4 * p * width).storeBytes(of: four, as: SIMD4<UInt32>.self)
                                }
                            } else {
                                for p in 0..<pairs { for g in 0..<group { (to + 4 * (p * width + g)).storeBytes(of: words[g * pairs + p], as: UInt32.self) } }
                            }
                        }
                    }
                } else {
                    for r in 0..<rows {
                        let row = origin + r * source.rowStride
                        for p in 0..<pairs { panel[p * width + r] = pairWord(row, p, columnStride: source.columnStride, depth: depth) }
                    }
                }
            }
        }
        // Only the last panel can be short of rows; the words of its missing rows are zero.
        let lastRows = count - (panels - 1) * width
        if panels > 0, lastRows < width {
            let panel = packed + (panels - 1) * width * pairs
            for p in 0..<pairs { for r in lastRows..<width { panel[p * width + r] = 0 } }
        }
    }

    /// Columns 2p and 2p + 1 (zero past `depth`) of a row as one word of two bfloat16.
    @inline(__always)
    private static func pairWord(_ row: UnsafePointer<Float>, _ p: Int, columnStride: Int, depth: Int) -> Float {
        let low = UInt32(BFloat16(row[2 * p * columnStride]).bitPattern)
        let high = 2 * p + 1 < depth ? UInt32(BFloat16(row[(2 * p + 1) * columnStride]).bitPattern) : 0
        return Float(bitPattern: low | high << 16)
    }

    /// V.scalarCount words from that many adjacent floats of two columns (the high one nil past the depth).
    @inline(__always)
    private static func storeWords<V: SIMD>(_ low: UnsafePointer<Float>, _ high: UnsafePointer<Float>?, _ to: UnsafeMutablePointer<Float>,
                                             as _: V.Type) where V.Scalar == UInt32 {
        var words = bfloat16High(UnsafeRawPointer(low).loadUnaligned(as: V.self)) &>> 16
        if let high { words |= bfloat16High(UnsafeRawPointer(high).loadUnaligned(as: V.self)) }
        UnsafeMutableRawPointer(to).storeBytes(of: words, as: V.self)
    }

    /// Float bits rounded to bfloat16 as `BFloat16(_:)` rounds (nearest, ties to even; NaN stays a
    /// quiet NaN), in the high half of each lane, the low half zero.
    @inline(__always)
    private static func bfloat16High<V: SIMD>(_ bits: V) -> V where V.Scalar == UInt32 {
        // Integer arithmetic only (a SIMD comparison's mask compiles lane by lane): nan is 1
        // where the magnitude is above infinity's, and a NaN keeps its bits, made quiet.
        let nan = ((bits & 0x7FFF_FFFF) &+ 0x007F_FFFF) &>> 31
        let rounded = bits &+ ((((bits &>> 16) & 1) &+ 0x7FFF) & (nan &- 1))
        return (rounded | nan &<< 22) & 0xFFFF_0000
    }

    /// Packs `count` rows × `depth` columns of `source` into panels of `panelWidth` rows: panel q
    /// holds rows q·w..<(q+1)·w column by column (w floats per column, zero past `count`), so the
    /// micro-kernel reads it front to back.
    @inline(__always)
    fileprivate static func packFloats(_ source: StridedMatrix, count: Int, depth: Int, panelWidth width: Int, into packed: UnsafeMutablePointer<Float>) {
        let fullPanels = count / width
        if source.rowStride == 1 {
            // Each column's rows are adjacent in memory: copy w floats at a time, sweeping a whole
            // column across the panels so that memory is read in order.
            for p in 0..<depth {
                let column = source.base + p * source.columnStride
                for q in 0..<fullPanels {
                    let from = column + q * width, to = packed + q * width * depth + p * width
                    if width % 16 == 0 {
                        for v in stride(from: 0, to: width, by: 16) { store16(load16(from + v), to + v) }
                    } else {
                        for r in 0..<width { to[r] = from[r] }
                    }
                }
            }
        } else if source.columnStride == 1 {
            // A transposition: each row is contiguous along the depth. Read it a cache line (16
            // floats) at a time and scatter that into the panel, so every line is loaded once:
            // rows a multiple of 4 KB apart (GPT-2's 3072 floats) fall in the same L1 set, and
            // reading 16 of them a float at a time evicts each line before its next float is read.
            for q in 0..<fullPanels {
                let origin = source.base + q * width * source.rowStride, panel = packed + q * width * depth
                forEachChunk(0..<depth) { p, lanes in
                    for r in 0..<width {
                        let values = load16(origin + r * source.rowStride + p, lanes)
                        for i in 0..<lanes { panel[(p + i) * width + r] = values[i] }
                    }
                }
            }
        } else {
            for q in 0..<fullPanels {
                let origin = source.base + q * width * source.rowStride, panel = packed + q * width * depth
                for p in 0..<depth {
                    for r in 0..<width { panel[p * width + r] = origin[r * source.rowStride + p * source.columnStride] }
                }
            }
        }
        let rows = count - fullPanels * width
        guard rows > 0 else { return }
        let origin = source.base + fullPanels * width * source.rowStride, panel = packed + fullPanels * width * depth
        for p in 0..<depth {
            let from = origin + p * source.columnStride, to = panel + p * width
            for r in 0..<width { to[r] = r < rows ? from[r * source.rowStride] : 0 }
        }
    }

    /// C's rows × columns tile (at most mr × nr) = start + the packed A panel · the packed B panel.
    /// Partial tiles at the edges go through a full tile on the stack.
    @inline(__always)
    private static func tile(depth: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int,
                             rows: Int, columns: Int, start: MatrixMultiplyStart, kernel: Kernel) {
        let (mr, nr) = (kernel.mr, kernel.nr)
        if rows == mr && columns == nr {
            kernel.run(depth: depth, a: a, b: b, c: c, ldc: ldc, start: start)
            return
        }
        withUnsafeTemporaryAllocation(of: Float.self, capacity: mr * nr) { buffer in
            let full = buffer.baseAddress!
            full.initialize(repeating: 0, count: mr * nr)
            for r in 0..<rows { fill(full + r * nr, count: columns, start: start, existing: c + r * ldc) }
            kernel.run(depth: depth, a: a, b: b, c: full, ldc: nr, start: .accumulate)
            for r in 0..<rows { (c + r * ldc).update(from: full + r * nr, count: columns) }
        }
    }

    /// The 6 × 16 register tile: for each of `depth` steps, one 16-float row of B times six
    /// broadcast floats of A, added with fused multiply-adds.
    @inline(never)
    fileprivate static func microKernel(depth: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int,
                                    start: MatrixMultiplyStart) {
        var c0: SIMD16<Float>, c1: SIMD16<Float>, c2: SIMD16<Float>, c3: SIMD16<Float>, c4: SIMD16<Float>, c5: SIMD16<Float>
        switch start {
        case .zero:
            c0 = .zero; c1 = .zero; c2 = .zero; c3 = .zero; c4 = .zero; c5 = .zero
        case .accumulate:
            c0 = load16(c); c1 = load16(c + ldc); c2 = load16(c + 2 * ldc)
            c3 = load16(c + 3 * ldc); c4 = load16(c + 4 * ldc); c5 = load16(c + 5 * ldc)
        case .rowVector(let row):
            c0 = load16(row); c1 = c0; c2 = c0; c3 = c0; c4 = c0; c5 = c0
        }
        var a = a, b = b
        for _ in 0..<depth {
            let bRow = UnsafeRawPointer(b).load(as: SIMD16<Float>.self)
            c0.addProduct(a[0], bRow)
            c1.addProduct(a[1], bRow)
            c2.addProduct(a[2], bRow)
            c3.addProduct(a[3], bRow)
            c4.addProduct(a[4], bRow)
            c5.addProduct(a[5], bRow)
            a += 6
            b += 16
        }
        store16(c0, c); store16(c1, c + ldc); store16(c2, c + 2 * ldc)
        store16(c3, c + 3 * ldc); store16(c4, c + 4 * ldc); store16(c5, c + 5 * ldc)
    }

    /// row[0..<count] = start (with `existing` as the accumulate source).
    @inline(__always)
    static func fill(_ row: UnsafeMutablePointer<Float>, count: Int, start: MatrixMultiplyStart, existing: UnsafePointer<Float>? = nil) {
        switch start {
        case .zero: row.update(repeating: 0, count: count)
        case .accumulate: if let existing { row.update(from: existing, count: count) }
        case .rowVector(let vector): row.update(from: vector, count: count)
        }
    }

    private static func roundUp(_ value: Int, to multiple: Int) -> Int { (value + multiple - 1) / multiple * multiple }
}

extension MatrixMultiplyStart {
    /// The same start for the columns from `columns` on.
    func offset(by columns: Int) -> MatrixMultiplyStart {
        if case .rowVector(let vector) = self { return .rowVector(vector + columns) }
        return self
    }
}
