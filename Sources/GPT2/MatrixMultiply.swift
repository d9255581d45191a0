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
enum MatrixMultiplyStart {
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
/// Where the data sits: the packed B block (768 KB) in L2, read front to back once per A panel;
/// the A panel (6 KB) in L1 for its whole sweep; C is walked along its rows, so each of the tile's
/// 6 rows is a sequential stream that the hardware prefetcher follows (walking down C's columns
/// instead, as BLIS does, stalls on C's cache misses: Swift cannot issue prefetch instructions).
enum MatrixMultiply {
    /// The micro-kernel's tile: mr rows × nr columns of accumulators. 6 × 16 floats is 12 AVX2
    /// registers (of 16) and needs 8 loads per 12 FMAs, which two FMA and three load ports sustain.
    static let mr = 6
    static let nr = 16
    /// A packed B block is kc × nc floats (768 KB, most of a 1 MB L2). kc is also the depth of one
    /// pass over C (read and written once per kc multiply-adds); nc = 768 covers GPT-2 124M's
    /// narrow products (n = 768) whole, so their A operand is packed only once.
    static let kc = 256
    static let nc = 768

    /// Splits the product over `threads` threads, or, when nil, over as many of `Kernels.threadCount`
    /// as give each at least a million multiply-adds (less is not worth waking a thread for).
    /// Callers that are already one part of a parallel region pass 1.
    static func multiply(m: Int, n: Int, k: Int, a: StridedMatrix, b: StridedMatrix,
                         c: UnsafeMutablePointer<Float>, ldc: Int, start: MatrixMultiplyStart, threads: Int? = nil) {
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
                              start: start.offset(by: j0))
            } else {
                let i0 = share.lowerBound * mr, i1 = min(m, share.upperBound * mr)
                multiplyBlock(m: i1 - i0, n: n, k: k, a: a.offset(row: i0, column: 0), b: b, c: c + i0 * ldc, ldc: ldc, start: start)
            }
        }
    }

    /// One thread's share: the blocking loops around the micro-kernel.
    private static func multiplyBlock(m: Int, n: Int, k: Int, a: StridedMatrix, b: StridedMatrix,
                                      c: UnsafeMutablePointer<Float>, ldc: Int, start: MatrixMultiplyStart) {
        guard m > 0, n > 0 else { return }
        let packedBCount = min(kc, k) * roundUp(min(nc, n), to: nr)
        ScratchSpace.with(count: packedBCount + kc * mr) { scratch in
            let packedB = scratch, packedA = scratch + packedBCount
            for j0 in stride(from: 0, to: n, by: nc) {
                let columns = min(nc, n - j0)
                for p0 in stride(from: 0, to: k, by: kc) {
                    let depth = min(kc, k - p0)
                    // B's block as panels of nr columns: the transpose of "columns × depth".
                    pack(b.offset(row: p0, column: j0).transposed, count: columns, depth: depth, panelWidth: nr, into: packedB)
                    let blockStart = p0 == 0 ? start.offset(by: j0) : .accumulate
                    for i0 in stride(from: 0, to: m, by: mr) {
                        // A's panel is packed just before its sweep, so the sweep reads it from L1.
                        let rows = min(mr, m - i0)
                        pack(a.offset(row: i0, column: p0), count: rows, depth: depth, panelWidth: mr, into: packedA)
                        for jr in stride(from: 0, to: columns, by: nr) {
                            tile(depth: depth, a: packedA, b: packedB + jr * depth, c: c + i0 * ldc + j0 + jr, ldc: ldc,
                                 rows: rows, columns: min(nr, columns - jr), start: blockStart.offset(by: jr))
                        }
                    }
                }
            }
        }
    }

    /// Packs `count` rows × `depth` columns of `source` into panels of `panelWidth` rows: panel q
    /// holds rows q·w..<(q+1)·w column by column (w floats per column, zero past `count`), so the
    /// micro-kernel reads it front to back.
    @inline(__always)
    private static func pack(_ source: StridedMatrix, count: Int, depth: Int, panelWidth width: Int, into packed: UnsafeMutablePointer<Float>) {
        let fullPanels = count / width
        if source.rowStride == 1 {
            // Each column's rows are adjacent in memory: copy w floats at a time, sweeping a whole
            // column across the panels so that memory is read in order.
            for p in 0..<depth {
                let column = source.base + p * source.columnStride
                for q in 0..<fullPanels {
                    let from = column + q * width, to = packed + q * width * depth + p * width
                    if width == 16 { store16(load16(from), to) } else { for r in 0..<width { to[r] = from[r] } }
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
                             rows: Int, columns: Int, start: MatrixMultiplyStart) {
        if rows == mr && columns == nr {
            microKernel(depth: depth, a: a, b: b, c: c, ldc: ldc, start: start)
            return
        }
        withUnsafeTemporaryAllocation(of: Float.self, capacity: mr * nr) { buffer in
            let full = buffer.baseAddress!
            full.initialize(repeating: 0, count: mr * nr)
            for r in 0..<rows { fill(full + r * nr, count: columns, start: start, existing: c + r * ldc) }
            microKernel(depth: depth, a: a, b: b, c: full, ldc: nr, start: .accumulate)
            for r in 0..<rows { (c + r * ldc).update(from: full + r * nr, count: columns) }
        }
    }

    /// The 6 × 16 register tile: for each of `depth` steps, one 16-float row of B times six
    /// broadcast floats of A, added with fused multiply-adds.
    @inline(never)
    private static func microKernel(depth: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int,
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
