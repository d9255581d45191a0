/// A weight matrix w[k, n] (applied as x · w) laid out for decoding, where each step multiplies a
/// few rows by every weight and the weights are all the memory traffic. One core reads memory at
/// full speed only as one sequential stream (reading eight rows of a row-major matrix side by
/// side halves it), so the weights are stored in exactly the order the kernel reads them:
/// column blocks of `columnBlock` columns; in each, groups of `depthBlock` rows; in each group,
/// 8-column chunks of those rows, 64 values. k and n are padded to multiples of 8 with zeros.
final class StreamingMatrix<Element: WeightElement>: @unchecked Sendable {  // read-only after init
    static var depthBlock: Int { 8 }
    /// Columns whose partial sums stay in L1 while the block's rows stream past (8 rows × 128 floats, 4 KB;
    /// at batch 8 in fp32, 128 gave 277–317 tokens/s where 256 gave 220–240 and 512, 160).
    static var columnBlock: Int { 128 }

    let k: Int, n: Int
    let paddedDepth: Int, paddedColumns: Int
    let values: UnsafeMutablePointer<Element>

    /// `weight(p, j)` is w[p, j].
    init(k: Int, n: Int, weight: (Int, Int) -> Float) {
        self.k = k
        self.n = n
        paddedDepth = (k + 7) / 8 * 8
        paddedColumns = (n + 7) / 8 * 8
        values = .allocate(capacity: paddedDepth * paddedColumns)
        for j0 in stride(from: 0, to: paddedColumns, by: Self.columnBlock) {
            let width = min(Self.columnBlock, paddedColumns - j0)
            for p0 in stride(from: 0, to: paddedDepth, by: Self.depthBlock) {
                for chunk in stride(from: 0, to: width, by: 8) {
                    let target = values + offset(columnBlockStart: j0, width: width, depthStart: p0) + chunk * Self.depthBlock
                    for i in 0..<Self.depthBlock {
                        for lane in 0..<8 {
                            let (p, j) = (p0 + i, j0 + chunk + lane)
                            (target + i * 8 + lane).initialize(to: Element(rounding: p < k && j < n ? weight(p, j) : 0))
                        }
                    }
                }
            }
        }
    }

    deinit { values.deallocate() }

    /// Where the group of rows from `depthStart` begins inside the column block at `columnBlockStart`.
    @inline(__always)
    func offset(columnBlockStart j0: Int, width: Int, depthStart p0: Int) -> Int {
        j0 * paddedDepth + p0 * width
    }

    /// w[p, j] as stored.
    func value(_ p: Int, _ j: Int) -> Float {
        let j0 = j / Self.columnBlock * Self.columnBlock, width = min(Self.columnBlock, paddedColumns - j0)
        let p0 = p / Self.depthBlock * Self.depthBlock
        return values[offset(columnBlockStart: j0, width: width, depthStart: p0) + (j - j0) / 8 * 64 + (p - p0) * 8 + j % 8].floatValue
    }
}

/// c[m, n] = start + a[m, k] · w[k, n] for a StreamingMatrix w: every output is the start value
/// plus the products over k in order, one fused multiply-add each, whatever the thread count.
enum StreamingMultiply {
    /// Rows multiplied per pass over the weights; more rows take several passes.
    static let maxRows = 8

    static func multiply<Element: WeightElement>(m: Int, a: UnsafePointer<Float>, w: StreamingMatrix<Element>,
                                                 c: UnsafeMutablePointer<Float>, ldc: Int, start: MatrixMultiplyStart) {
        let (k, depth) = (w.k, w.paddedDepth)
        let inputStride = rowStride(depth)
        // Threads take contiguous runs of 8-column chunks, each at least 64K weights (a quarter MB
        // of fp32, some tens of microseconds of streaming), so the split does not cost more than it saves.
        let chunks = w.paddedColumns / 8
        let parts = max(1, min(Kernels.threadCount, chunks, chunks * 8 * depth >> 16))
        for firstRow in stride(from: 0, to: m, by: maxRows) {
            let rows = min(maxRows, m - firstRow)
            // a's rows padded with zeros to the padded depth, so every group of rows is whole.
            ScratchSpace.with(count: rows * inputStride) { input in
                for r in 0..<rows {
                    (input + r * inputStride).update(from: a + (firstRow + r) * k, count: k)
                    (input + r * inputStride + k).update(repeating: 0, count: depth - k)
                }
                Kernels.parallel(parts: parts) { part in
                    let share = Kernels.split(chunks, parts: parts, part: part)
                    multiplyColumns(share.lowerBound * 8..<share.upperBound * 8, rows: rows, input: input, inputStride: inputStride, w: w,
                                    c: c + firstRow * ldc, ldc: ldc, start: start)
                }
            }
        }
    }

    /// The columns `columns` (multiples of 8, within the padded width) of `rows` rows, column
    /// block by column block; each block's sums live in scratch until its rows have all passed.
    private static func multiplyColumns<Element: WeightElement>(_ columns: Range<Int>, rows: Int, input: UnsafePointer<Float>, inputStride: Int,
                                                                w: StreamingMatrix<Element>, c: UnsafeMutablePointer<Float>, ldc: Int,
                                                                start: MatrixMultiplyStart) {
        let depth = w.paddedDepth, blockWidth = StreamingMatrix<Element>.columnBlock, depthBlock = StreamingMatrix<Element>.depthBlock
        let sumsStride = rowStride(blockWidth)
        ScratchSpace.with(count: rows * sumsStride) { sums in
            var j = columns.lowerBound
            while j < columns.upperBound {
                let j0 = j / blockWidth * blockWidth, width = min(blockWidth, w.paddedColumns - j0)
                let end = min(columns.upperBound, j0 + width), count = end - j, valid = max(0, min(end, w.n) - j)
                for r in 0..<rows {
                    MatrixMultiply.fill(sums + r * sumsStride, count: valid, start: start.offset(by: j), existing: c + r * ldc + j)
                    (sums + r * sumsStride + valid).update(repeating: 0, count: count - valid)
                }
                for p0 in stride(from: 0, to: depth, by: depthBlock) {
                    var block = UnsafePointer(w.values + w.offset(columnBlockStart: j0, width: width, depthStart: p0) + (j - j0) * depthBlock)
                    var chunk = 0
                    if rows == maxRows {
                        let x = input + p0
                        while chunk + 16 <= count {
                            for half in 0..<2 {
                                let r = 4 * half
                                fourRowsTwoChunks(block, x + r * inputStride, x + (r + 1) * inputStride, x + (r + 2) * inputStride,
                                                  x + (r + 3) * inputStride, sums: sums + r * sumsStride + chunk, sumsStride: sumsStride)
                            }
                            block += 128
                            chunk += 16
                        }
                    } else if rows == 1 {
                        // One row: two chunks at a time, so two chains of multiply-adds overlap.
                        let x = input + p0
                        while chunk + 16 <= count {
                            let out = sums + chunk
                            var first = load8(out), second = load8(out + 8)
                            for i in 0..<8 {
                                let y = SIMD8(repeating: x[i])
                                first.addProduct(y, Element.widen8(block + 8 * i)); second.addProduct(y, Element.widen8(block + 64 + 8 * i))
                            }
                            store8(first, out); store8(second, out + 8)
                            block += 128
                            chunk += 16
                        }
                    }
                    for chunk in stride(from: chunk, to: count, by: 8) {
                        let v0 = Element.widen8(block), v1 = Element.widen8(block + 8), v2 = Element.widen8(block + 16)
                        let v3 = Element.widen8(block + 24), v4 = Element.widen8(block + 32), v5 = Element.widen8(block + 40)
                        let v6 = Element.widen8(block + 48), v7 = Element.widen8(block + 56)
                        for r in 0..<rows {
                            let x = input + r * inputStride + p0, out = sums + r * sumsStride + chunk
                            var sum = load8(out)
                            sum.addProduct(x[0], v0); sum.addProduct(x[1], v1); sum.addProduct(x[2], v2); sum.addProduct(x[3], v3)
                            sum.addProduct(x[4], v4); sum.addProduct(x[5], v5); sum.addProduct(x[6], v6); sum.addProduct(x[7], v7)
                            store8(sum, out)
                        }
                        block += 64
                    }
                }
                for r in 0..<rows { (c + r * ldc + j).update(from: sums + r * sumsStride, count: valid) }
                j = end
            }
        }
    }

    /// Two chunks (16 columns) of a group's weights applied to four rows: eight independent
    /// accumulators, each weight vector loaded once for the four rows and each input broadcast
    /// once for the two chunks, so loads do not outnumber the fused multiply-adds. The same
    /// operations in the same order as the loop over rows.
    @inline(__always)
    private static func fourRowsTwoChunks<Element: WeightElement>(_ block: UnsafePointer<Element>, _ x0: UnsafePointer<Float>,
                                                                  _ x1: UnsafePointer<Float>, _ x2: UnsafePointer<Float>,
                                                                  _ x3: UnsafePointer<Float>, sums: UnsafeMutablePointer<Float>, sumsStride t: Int) {
        var a0 = load8(sums), b0 = load8(sums + 8), a1 = load8(sums + t), b1 = load8(sums + t + 8)
        var a2 = load8(sums + 2 * t), b2 = load8(sums + 2 * t + 8), a3 = load8(sums + 3 * t), b3 = load8(sums + 3 * t + 8)
        for i in 0..<8 {
            let v = Element.widen8(block + 8 * i), w = Element.widen8(block + 64 + 8 * i)
            let y0 = SIMD8(repeating: x0[i]), y1 = SIMD8(repeating: x1[i]), y2 = SIMD8(repeating: x2[i]), y3 = SIMD8(repeating: x3[i])
            a0.addProduct(y0, v); b0.addProduct(y0, w); a1.addProduct(y1, v); b1.addProduct(y1, w)
            a2.addProduct(y2, v); b2.addProduct(y2, w); a3.addProduct(y3, v); b3.addProduct(y3, w)
        }
        store8(a0, sums); store8(b0, sums + 8); store8(a1, sums + t); store8(b1, sums + t + 8)
        store8(a2, sums + 2 * t); store8(b2, sums + 2 * t + 8); store8(a3, sums + 3 * t); store8(b3, sums + 3 * t + 8)
    }

    /// Scratch rows are this far apart: 64 bytes past a multiple of 4 KB, because rows exactly
    /// 4 KB apart share an L1 set and make each load wait on the previous row's store (4K aliasing).
    private static func rowStride(_ count: Int) -> Int { count + 16 }

    @inline(__always)
    private static func load8(_ pointer: UnsafeMutablePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(pointer).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always)
    private static func store8(_ value: SIMD8<Float>, _ pointer: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: SIMD8<Float>.self)
    }
}
