extension Kernels {
    /// Attention of `newTokens` queries per sequence over the cached keys and values.
    /// out[B, n, C] from the queries in qkv[B, n, 3C] and keys, values [B, capacity, C], whose
    /// first pastLength + n rows are filled; query i sees keys 0...pastLength + i. The steps are
    /// attentionForward's, so cached and uncached decoding agree.
    public static func cachedAttentionForward(out: Output, qkv: Input, keys: Input, values: Input,
                                              batch: Int, newTokens n: Int, pastLength: Int, capacity: Int,
                                              channels C: Int, heads NH: Int, scale: Float) {
        let hs = C / NH
        let total = pastLength + n
        parallelFor(batch * NH) { pairs in
            ScratchSpace.with(count: n * total) { weights in
                for pair in pairs {
                    let (b, h) = pair.quotientAndRemainder(dividingBy: NH)
                    let q = StridedMatrix.rowMajor(qkv + b * n * 3 * C + h * hs, leadingDimension: 3 * C, transposed: false)
                    let k = StridedMatrix.rowMajor(keys + b * capacity * C + h * hs, leadingDimension: C, transposed: false)
                    let v = StridedMatrix.rowMajor(values + b * capacity * C + h * hs, leadingDimension: C, transposed: false)
                    MatrixMultiply.multiply(m: n, n: total, k: hs, a: q, b: k.transposed, c: weights, ldc: total, start: .zero, threads: 1)
                    for i in 0..<n {
                        causalSoftmax(weights + i * total, visible: pastLength + i + 1, length: total, keyMask: nil, scale: scale)
                    }
                    MatrixMultiply.multiply(m: n, n: hs, k: total, a: .rowMajor(weights, leadingDimension: total, transposed: false), b: v,
                                            c: out + b * n * C + h * hs, ldc: C, start: .zero, threads: 1)
                }
            }
        }
    }
}
