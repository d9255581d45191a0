import Foundation

/// The numeric layers of GPT-2, each a forward/backward pair over flat row-major `Float` buffers.
/// Backward functions accumulate (`+=`) into parameter gradients, as llm.c's do, so that several
/// micro-batches add up; activation gradients are written or accumulated as each comment says.
/// The model calls nothing else, so faster kernels replace these without touching the model.
public enum Kernels {
    public typealias Input = UnsafePointer<Float>
    public typealias Output = UnsafeMutablePointer<Float>

    // MARK: Matrix multiplication

    /// c[m, n] = (accumulate ? c : 0) + op(a)[m, k] · op(b)[k, n], where op(a) is a[m, k] or, when
    /// `transposeA`, the transpose of a stored [k, m]; likewise b is [k, n] or, when `transposeB`, [n, k].
    public static func matmul(_ c: Output, _ a: Input, _ b: Input, m: Int, n: Int, k: Int,
                              transposeA: Bool = false, transposeB: Bool = false, accumulate: Bool = false) {
        precondition(!(transposeA && transposeB), "a^T·b^T is not used by the model")
        if !accumulate { c.update(repeating: 0, count: m * n) }
        if transposeB {
            for i in 0..<m {
                for j in 0..<n { c[i * n + j] += dot(a + i * k, b + j * k, k) }
            }
        } else if transposeA {
            for p in 0..<k {
                for i in 0..<m { axpy(c + i * n, a[p * m + i], b + p * n, n) }
            }
        } else {
            for i in 0..<m {
                for p in 0..<k { axpy(c + i * n, a[i * k + p], b + p * n, n) }
            }
        }
    }

    /// Σ a[i]·b[i], with 16 partial sums so that the loop vectorises.
    @inline(__always)
    static func dot(_ a: Input, _ b: Input, _ count: Int) -> Float {
        var partial = SIMD16<Float>()
        var i = 0
        while i + 16 <= count {
            let x = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self)
            let y = UnsafeRawPointer(b + i).loadUnaligned(as: SIMD16<Float>.self)
            partial += x * y
            i += 16
        }
        var sum = partial.sum()
        while i < count { sum += a[i] * b[i]; i += 1 }
        return sum
    }

    /// y[i] += alpha·x[i].
    @inline(__always)
    static func axpy(_ y: Output, _ alpha: Float, _ x: Input, _ count: Int) {
        for i in 0..<count { y[i] += alpha * x[i] }
    }

    // MARK: Linear (Hugging Face's Conv1D: weight stored (in, out))

    /// out[rows, outF] = inp[rows, inF] · weight[inF, outF] + bias[outF]
    public static func linearForward(out: Output, inp: Input, weight: Input, bias: Input, rows: Int, inFeatures: Int, outFeatures: Int) {
        for r in 0..<rows { (out + r * outFeatures).update(from: bias, count: outFeatures) }
        matmul(out, inp, weight, m: rows, n: outFeatures, k: inFeatures, accumulate: true)
    }

    /// dinp[rows, inF] = dout · weightᵀ (overwritten); dweight[inF, outF] += inpᵀ · dout; dbias[outF] += Σ_rows dout
    public static func linearBackward(dinp: Output, dweight: Output, dbias: Output, dout: Input, inp: Input, weight: Input,
                                      rows: Int, inFeatures: Int, outFeatures: Int) {
        matmul(dinp, dout, weight, m: rows, n: inFeatures, k: outFeatures, transposeB: true)
        matmul(dweight, inp, dout, m: inFeatures, n: outFeatures, k: rows, transposeA: true, accumulate: true)
        for r in 0..<rows { axpy(dbias, 1, dout + r * outFeatures, outFeatures) }
    }

    // MARK: Embeddings

    /// out[B·T, C] = wte[tokens[b, t]] + wpe[t]
    public static func embeddingForward(out: Output, tokens: UnsafePointer<Int32>, wte: Input, wpe: Input, batch: Int, time: Int, channels C: Int) {
        for b in 0..<batch {
            for t in 0..<time {
                let row = out + (b * time + t) * C
                let token = wte + Int(tokens[b * time + t]) * C
                let position = wpe + t * C
                for c in 0..<C { row[c] = token[c] + position[c] }
            }
        }
    }

    /// dwte[tokens[b, t]] += dout[b, t]; dwpe[t] += dout[b, t]
    public static func embeddingBackward(dwte: Output, dwpe: Output, dout: Input, tokens: UnsafePointer<Int32>, batch: Int, time: Int, channels C: Int) {
        for b in 0..<batch {
            for t in 0..<time {
                let row = dout + (b * time + t) * C
                axpy(dwte + Int(tokens[b * time + t]) * C, 1, row, C)
                axpy(dwpe + t * C, 1, row, C)
            }
        }
    }

    // MARK: LayerNorm

    /// out[rows, C] = (inp - mean) · rstd · weight + bias; mean[rows], rstd[rows] kept for backward
    public static func layerNormForward(out: Output, mean: Output, rstd: Output, inp: Input, weight: Input, bias: Input,
                                        rows: Int, channels C: Int, epsilon: Float) {
        for r in 0..<rows {
            let x = inp + r * C
            var sum: Float = 0
            for c in 0..<C { sum += x[c] }
            let m = sum / Float(C)
            var variance: Float = 0
            for c in 0..<C { let d = x[c] - m; variance += d * d }
            let s = 1 / (variance / Float(C) + epsilon).squareRoot()
            let y = out + r * C
            for c in 0..<C { y[c] = (x[c] - m) * s * weight[c] + bias[c] }
            mean[r] = m
            rstd[r] = s
        }
    }

    /// dinp[rows, C] += ∂L/∂inp; dweight[C] += Σ dout·x̂; dbias[C] += Σ dout
    public static func layerNormBackward(dinp: Output, dweight: Output, dbias: Output, dout: Input, inp: Input, weight: Input,
                                         mean: Input, rstd: Input, rows: Int, channels C: Int) {
        for r in 0..<rows {
            let x = inp + r * C, dy = dout + r * C, dx = dinp + r * C
            let m = mean[r], s = rstd[r]
            var meanDNorm: Float = 0, meanDNormTimesNorm: Float = 0
            for c in 0..<C {
                let dNorm = weight[c] * dy[c]
                meanDNorm += dNorm
                meanDNormTimesNorm += dNorm * (x[c] - m) * s
            }
            meanDNorm /= Float(C)
            meanDNormTimesNorm /= Float(C)
            for c in 0..<C {
                let norm = (x[c] - m) * s
                dbias[c] += dy[c]
                dweight[c] += norm * dy[c]
                dx[c] += (weight[c] * dy[c] - meanDNorm - norm * meanDNormTimesNorm) * s
            }
        }
    }

    // MARK: Causal self-attention

    /// out[B, T, C] from qkv[B, T, 3C] (q | k | v, heads split along C); att[B, NH, T, T] keeps the
    /// softmax weights. Key t2 is visible to query t when t2 <= t and keyMask[b, t2] != 0; a query
    /// that sees no key at all gets zero output.
    public static func attentionForward(out: Output, att: Output, qkv: Input, keyMask: UnsafePointer<Int32>?,
                                        batch: Int, time T: Int, channels C: Int, heads NH: Int, scale: Float) {
        let hs = C / NH
        for b in 0..<batch {
            for t in 0..<T {
                for h in 0..<NH {
                    let q = qkv + (b * T + t) * 3 * C + h * hs
                    let weights = att + ((b * NH + h) * T + t) * T
                    var maximum = -Float.infinity
                    for t2 in 0...t {
                        if let keyMask, keyMask[b * T + t2] == 0 { weights[t2] = -.infinity; continue }
                        let k = qkv + (b * T + t2) * 3 * C + C + h * hs
                        weights[t2] = dot(q, k, hs) * scale
                        maximum = max(maximum, weights[t2])
                    }
                    var sum: Float = 0
                    for t2 in 0...t {
                        let e = maximum == -.infinity ? 0 : expf(weights[t2] - maximum)
                        weights[t2] = e
                        sum += e
                    }
                    let inverse: Float = sum > 0 ? 1 / sum : 0
                    for t2 in 0..<T { weights[t2] = t2 <= t ? weights[t2] * inverse : 0 }
                    let y = out + (b * T + t) * C + h * hs
                    y.update(repeating: 0, count: hs)
                    for t2 in 0...t where weights[t2] != 0 {
                        axpy(y, weights[t2], qkv + (b * T + t2) * 3 * C + 2 * C + h * hs, hs)
                    }
                }
            }
        }
    }

    /// dqkv[B, T, 3C] += ∂L/∂qkv, from dout[B, T, C], the stored att[B, NH, T, T] and qkv.
    /// `scratch` holds T floats.
    public static func attentionBackward(dqkv: Output, dout: Input, att: Input, qkv: Input, scratch: Output,
                                         batch: Int, time T: Int, channels C: Int, heads NH: Int, scale: Float) {
        let hs = C / NH
        let dWeights = scratch
        for b in 0..<batch {
            for t in 0..<T {
                for h in 0..<NH {
                    let weights = att + ((b * NH + h) * T + t) * T
                    let dy = dout + (b * T + t) * C + h * hs
                    // Through y = Σ w·v: ∂w and ∂v.
                    var weightedSum: Float = 0
                    for t2 in 0...t {
                        let v = qkv + (b * T + t2) * 3 * C + 2 * C + h * hs
                        dWeights[t2] = dot(v, dy, hs)
                        weightedSum += weights[t2] * dWeights[t2]
                        axpy(dqkv + (b * T + t2) * 3 * C + 2 * C + h * hs, weights[t2], dy, hs)
                    }
                    // Through the softmax, then the scaled dot products q·k.
                    let q = qkv + (b * T + t) * 3 * C + h * hs
                    let dq = dqkv + (b * T + t) * 3 * C + h * hs
                    for t2 in 0...t where weights[t2] != 0 {
                        let dScore = weights[t2] * (dWeights[t2] - weightedSum) * scale
                        axpy(dq, dScore, qkv + (b * T + t2) * 3 * C + C + h * hs, hs)
                        axpy(dqkv + (b * T + t2) * 3 * C + C + h * hs, dScore, q, hs)
                    }
                }
            }
        }
    }

    // MARK: GELU (tanh approximation, Hugging Face's gelu_new)

    static let geluScale = Float((2.0 / Double.pi).squareRoot())

    /// out[n] = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
    public static func geluForward(out: Output, inp: Input, count: Int) {
        for i in 0..<count {
            let x = inp[i]
            out[i] = 0.5 * x * (1 + tanhf(geluScale * (x + 0.044715 * x * x * x)))
        }
    }

    /// dinp[n] = gelu'(inp) · dout (overwritten; may alias dout)
    public static func geluBackward(dinp: Output, inp: Input, dout: Input, count: Int) {
        for i in 0..<count {
            let x = inp[i]
            let th = tanhf(geluScale * (x + 0.044715 * x * x * x))
            let local = 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * geluScale * (1 + 3 * 0.044715 * x * x)
            dinp[i] = local * dout[i]
        }
    }

    // MARK: Residual

    /// out[n] += inp[n]
    public static func residualAdd(out: Output, inp: Input, count: Int) { axpy(out, 1, inp, count) }

    // MARK: Softmax cross-entropy over the vocabulary

    /// For each row with target ≥ 0: losses[row] = logsumexp(logits[row]) - logits[row, target]
    /// (accumulated in Double), and probabilities[row] = softmax(logits[row]). Rows with a negative
    /// target get loss 0. Returns the sum of the losses.
    public static func crossEntropyForward(losses: Output, probabilities: Output, logits: Input, targets: UnsafePointer<Int32>,
                                           rows: Int, vocabulary V: Int) -> Double {
        var total = 0.0
        for r in 0..<rows {
            let row = logits + r * V
            var maximum = -Float.infinity
            for v in 0..<V { maximum = max(maximum, row[v]) }
            var sum = 0.0
            let p = probabilities + r * V
            for v in 0..<V {
                let e = expf(row[v] - maximum)
                p[v] = e
                sum += Double(e)
            }
            let inverse = Float(1 / sum)
            for v in 0..<V { p[v] *= inverse }
            let target = Int(targets[r])
            if target >= 0 {
                let loss = log(sum) + Double(maximum) - Double(row[target])
                losses[r] = Float(loss)
                total += loss
            } else {
                losses[r] = 0
            }
        }
        return total
    }

    /// dlogits[rows, V] = (softmax - onehot(target))·scale for rows with a target, 0 elsewhere;
    /// written over `probabilities` in place.
    public static func crossEntropyBackward(probabilities: Output, targets: UnsafePointer<Int32>, rows: Int, vocabulary V: Int, scale: Float) {
        for r in 0..<rows {
            let p = probabilities + r * V
            let target = Int(targets[r])
            if target < 0 {
                p.update(repeating: 0, count: V)
                continue
            }
            for v in 0..<V { p[v] *= scale }
            p[target] -= scale
        }
    }
}
