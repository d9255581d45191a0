extension Kernels {
    /// Positions of the transposed key cache are padded to a multiple of this: scores are computed
    /// 64 positions (four vectors, four independent chains) at a time.
    public static let cachedKeyBlock = 64

    /// Attention of `newTokens` queries per sequence over the cached keys and values.
    /// out[B, n, C] from the queries in qkv[B, n, 3C], keysᵀ [B, C, keyStride] (each channel's keys
    /// side by side, keyStride a multiple of `cachedKeyBlock` ≥ capacity) and values
    /// [B, capacity, C], whose first pastLength + n positions are filled; query i sees positions
    /// 0...pastLength + i. Every score and output is the same chain of fused multiply-adds, in the
    /// same order, as the packed product in attentionForward computes it, so cached and uncached
    /// decoding agree exactly; it is done here directly because with one query per sequence,
    /// packing the operands would cost more than the product.
    public static func cachedAttentionForward(out: Output, qkv: Input, keysTransposed: Input, keyStride: Int, values: Input,
                                              batch: Int, newTokens n: Int, pastLength: Int, capacity: Int,
                                              channels C: Int, heads NH: Int, scale: Float) {
        let hs = C / NH, block = cachedKeyBlock
        precondition(keyStride % block == 0 && keyStride >= pastLength + n)
        parallelFor(batch * NH) { pairs in
            ScratchSpace.with(count: keyStride) { scores in
                for pair in pairs {
                    let (b, h) = pair.quotientAndRemainder(dividingBy: NH)
                    let keys = keysTransposed + (b * C + h * hs) * keyStride, sequenceValues = values + b * capacity * C + h * hs
                    for i in 0..<n {
                        let query = qkv + (b * n + i) * 3 * C + h * hs, visible = pastLength + i + 1
                        // Scores past `visible` are computed from whatever the padding holds and never read.
                        for t in stride(from: 0, to: visible, by: block) {
                            var s0 = SIMD16<Float>(), s1 = s0, s2 = s0, s3 = s0
                            for p in 0..<hs {
                                let row = keys + p * keyStride + t, q = query[p]
                                s0.addProduct(q, load16(row)); s1.addProduct(q, load16(row + 16))
                                s2.addProduct(q, load16(row + 32)); s3.addProduct(q, load16(row + 48))
                            }
                            store16(s0, scores + t); store16(s1, scores + t + 16); store16(s2, scores + t + 32); store16(s3, scores + t + 48)
                        }
                        causalSoftmax(scores, visible: visible, length: visible, keyMask: nil, scale: scale)
                        let output = out + (b * n + i) * C + h * hs
                        for j in stride(from: 0, to: hs, by: 64) {
                            let lanes = (min(16, hs - j), min(16, max(0, hs - j - 16)), min(16, max(0, hs - j - 32)), min(16, max(0, hs - j - 48)))
                            var a0 = SIMD16<Float>(), a1 = a0, a2 = a0, a3 = a0
                            for t in 0..<visible {
                                let weight = scores[t], row = sequenceValues + t * C + j
                                a0.addProduct(weight, load16(row, lanes.0))
                                if lanes.1 > 0 { a1.addProduct(weight, load16(row + 16, lanes.1)) }
                                if lanes.2 > 0 { a2.addProduct(weight, load16(row + 32, lanes.2)) }
                                if lanes.3 > 0 { a3.addProduct(weight, load16(row + 48, lanes.3)) }
                            }
                            store16(a0, output + j, lanes.0)
                            if lanes.1 > 0 { store16(a1, output + j + 16, lanes.1) }
                            if lanes.2 > 0 { store16(a2, output + j + 32, lanes.2) }
                            if lanes.3 > 0 { store16(a3, output + j + 48, lanes.3) }
                        }
                    }
                }
            }
        }
    }
}
