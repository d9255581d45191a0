import Foundation

extension Kernels {
    /// Attention of `newTokens` queries per sequence over the cached keys and values.
    /// out[B, n, C] from the queries in qkv[B, n, 3C] and keys, values [B, capacity, C], whose
    /// first pastLength + n rows are filled; query i sees keys 0...pastLength + i. `scratch` holds
    /// `capacity` floats. The arithmetic is attentionForward's, so cached and uncached decoding agree.
    public static func cachedAttentionForward(out: Output, qkv: Input, keys: Input, values: Input, scratch: Output,
                                              batch: Int, newTokens n: Int, pastLength: Int, capacity: Int,
                                              channels C: Int, heads NH: Int, scale: Float) {
        let hs = C / NH
        let weights = scratch
        for b in 0..<batch {
            for i in 0..<n {
                let visible = pastLength + i + 1
                for h in 0..<NH {
                    let q = qkv + (b * n + i) * 3 * C + h * hs
                    var maximum = -Float.infinity
                    for t2 in 0..<visible {
                        weights[t2] = dot(q, keys + (b * capacity + t2) * C + h * hs, hs) * scale
                        maximum = max(maximum, weights[t2])
                    }
                    var sum: Float = 0
                    for t2 in 0..<visible {
                        weights[t2] = expf(weights[t2] - maximum)
                        sum += weights[t2]
                    }
                    let inverse = 1 / sum
                    let y = out + (b * n + i) * C + h * hs
                    y.update(repeating: 0, count: hs)
                    for t2 in 0..<visible {
                        axpy(y, weights[t2] * inverse, values + (b * capacity + t2) * C + h * hs, hs)
                    }
                }
            }
        }
    }
}
