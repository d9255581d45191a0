import Foundation

/// The numeric layers of GPT-2, each a forward/backward pair over flat row-major `Float` buffers.
/// Backward functions accumulate (`+=`) into parameter gradients, as llm.c's do, so that several
/// micro-batches add up; activation gradients are written or accumulated as each comment says.
/// The model calls nothing else, so faster kernels replace these without touching the model.
///
/// Every kernel is vectorised on 16 floats and splits its work over `threadCount` threads (see
/// ThreadPool.swift) so that each output element is computed the same way whatever the count.
public enum Kernels {
    public typealias Input = UnsafePointer<Float>
    public typealias Output = UnsafeMutablePointer<Float>

    // MARK: Matrix multiplication

    /// c[m, n] = (accumulate ? c : 0) + op(a)[m, k] · op(b)[k, n], where op(a) is a[m, k] or, when
    /// `transposeA`, the transpose of a stored [k, m]; likewise b is [k, n] or, when `transposeB`, [n, k].
    public static func matmul(_ c: Output, _ a: Input, _ b: Input, m: Int, n: Int, k: Int,
                              transposeA: Bool = false, transposeB: Bool = false, accumulate: Bool = false) {
        MatrixMultiply.multiply(m: m, n: n, k: k,
                                a: .rowMajor(a, leadingDimension: transposeA ? m : k, transposed: transposeA),
                                b: .rowMajor(b, leadingDimension: transposeB ? k : n, transposed: transposeB),
                                c: c, ldc: n, start: accumulate ? .accumulate : .zero)
    }

    // MARK: Linear (Hugging Face's Conv1D: weight stored (in, out))

    /// out[rows, outF] = inp[rows, inF] · weight[inF, outF] + bias[outF]
    public static func linearForward(out: Output, inp: Input, weight: Input, bias: Input, rows: Int, inFeatures: Int, outFeatures: Int) {
        MatrixMultiply.multiply(m: rows, n: outFeatures, k: inFeatures,
                                a: .rowMajor(inp, leadingDimension: inFeatures, transposed: false),
                                b: .rowMajor(weight, leadingDimension: outFeatures, transposed: false),
                                c: out, ldc: outFeatures, start: .rowVector(bias))
    }

    /// dinp[rows, inF] = dout · weightᵀ (overwritten); dweight[inF, outF] += inpᵀ · dout; dbias[outF] += Σ_rows dout
    public static func linearBackward(dinp: Output, dweight: Output, dbias: Output, dout: Input, inp: Input, weight: Input,
                                      rows: Int, inFeatures: Int, outFeatures: Int) {
        matmul(dinp, dout, weight, m: rows, n: inFeatures, k: outFeatures, transposeB: true)
        matmul(dweight, inp, dout, m: inFeatures, n: outFeatures, k: rows, transposeA: true, accumulate: true)
        addColumnSums(dbias, dout, rows: rows, columns: outFeatures)
    }

    /// sums[c] += Σ_r matrix[r, c], split over columns so that each sum runs over the rows in order.
    static func addColumnSums(_ sums: Output, _ matrix: Input, rows: Int, columns: Int) {
        parallelFor(columns, grain: 16, minimumPerThread: 4096 / max(1, rows)) { range in
            forEachChunk(range) { c, lanes in
                var sum = load16(sums + c, lanes)
                for r in 0..<rows { sum += load16(matrix + r * columns + c, lanes) }
                store16(sum, sums + c, lanes)
            }
        }
    }

    // MARK: Embeddings

    /// out[B·T, C] = wte[tokens[b, t]] + wpe[t]
    public static func embeddingForward(out: Output, tokens: UnsafePointer<Int32>, wte: Input, wpe: Input, batch: Int, time: Int, channels C: Int) {
        parallelFor(batch * time, minimumPerThread: 16) { rows in
            for row in rows {
                let token = wte + Int(tokens[row]) * C, position = wpe + (row % time) * C, y = out + row * C
                forEachChunk(0..<C) { c, lanes in store16(load16(token + c, lanes) + load16(position + c, lanes), y + c, lanes) }
            }
        }
    }

    /// dwte[tokens[b, t]] += dout[b, t]; dwpe[t] += dout[b, t]. Split over channels, since several
    /// rows may add into the same token's row.
    public static func embeddingBackward(dwte: Output, dwpe: Output, dout: Input, tokens: UnsafePointer<Int32>, batch: Int, time: Int, channels C: Int) {
        parallelFor(C, grain: 16, minimumPerThread: 4096 / max(1, batch * time)) { channels in
            for row in 0..<(batch * time) {
                let dy = dout + row * C, token = dwte + Int(tokens[row]) * C, position = dwpe + (row % time) * C
                forEachChunk(channels) { c, lanes in
                    let g = load16(dy + c, lanes)
                    store16(load16(token + c, lanes) + g, token + c, lanes)
                    store16(load16(position + c, lanes) + g, position + c, lanes)
                }
            }
        }
    }

    // MARK: LayerNorm

    /// out[rows, C] = (inp - mean) · rstd · weight + bias; mean[rows], rstd[rows] kept for backward
    public static func layerNormForward(out: Output, mean: Output, rstd: Output, inp: Input, weight: Input, bias: Input,
                                        rows: Int, channels C: Int, epsilon: Float) {
        parallelFor(rows, minimumPerThread: 8) { range in
            for r in range {
                let x = inp + r * C, y = out + r * C
                var sum = SIMD16<Float>()
                forEachChunk(0..<C) { c, lanes in sum += load16(x + c, lanes) }
                let m = sum.sum() / Float(C)
                // Padding lanes read as the mean, so they add nothing to the variance.
                var squares = SIMD16<Float>()
                forEachChunk(0..<C) { c, lanes in
                    let d = load16(x + c, lanes, padding: m) - m
                    squares.addProduct(d, d)
                }
                let s = 1 / (squares.sum() / Float(C) + epsilon).squareRoot()
                forEachChunk(0..<C) { c, lanes in
                    let norm = (load16(x + c, lanes) - m) * s
                    store16(load16(bias + c, lanes).addingProduct(norm, load16(weight + c, lanes)), y + c, lanes)
                }
                mean[r] = m
                rstd[r] = s
            }
        }
    }

    /// dinp[rows, C] += ∂L/∂inp; dweight[C] += Σ dout·x̂; dbias[C] += Σ dout
    public static func layerNormBackward(dinp: Output, dweight: Output, dbias: Output, dout: Input, inp: Input, weight: Input,
                                         mean: Input, rstd: Input, rows: Int, channels C: Int) {
        // ∂inp row by row (each row needs only its own sums) ...
        parallelFor(rows, minimumPerThread: 8) { range in
            for r in range {
                let x = inp + r * C, dy = dout + r * C, dx = dinp + r * C
                let m = mean[r], s = rstd[r]
                var sumDNorm = SIMD16<Float>(), sumDNormTimesNorm = SIMD16<Float>()
                forEachChunk(0..<C) { c, lanes in
                    let dNorm = load16(weight + c, lanes) * load16(dy + c, lanes)
                    sumDNorm += dNorm
                    sumDNormTimesNorm.addProduct(dNorm, (load16(x + c, lanes) - m) * s)
                }
                let meanDNorm = sumDNorm.sum() / Float(C), meanDNormTimesNorm = sumDNormTimesNorm.sum() / Float(C)
                forEachChunk(0..<C) { c, lanes in
                    let norm = (load16(x + c, lanes) - m) * s
                    let dNorm = load16(weight + c, lanes) * load16(dy + c, lanes)
                    let dxRow = load16(dx + c, lanes).addingProduct((dNorm - meanDNorm).addingProduct(-norm, meanDNormTimesNorm), s)
                    store16(dxRow, dx + c, lanes)
                }
            }
        }
        // ... and the parameter gradients column by column, each summed over the rows in order.
        parallelFor(C, grain: 16, minimumPerThread: 4096 / max(1, rows)) { channels in
            for r in 0..<rows {
                let x = inp + r * C, dy = dout + r * C
                let m = mean[r], s = rstd[r]
                forEachChunk(channels) { c, lanes in
                    let g = load16(dy + c, lanes)
                    store16(load16(dbias + c, lanes) + g, dbias + c, lanes)
                    store16(load16(dweight + c, lanes).addingProduct((load16(x + c, lanes) - m) * s, g), dweight + c, lanes)
                }
            }
        }
    }

    // MARK: Causal self-attention

    /// out[B, T, C] from qkv[B, T, 3C] (q | k | v, heads split along C); att[B, NH, T, T] keeps the
    /// softmax weights. Key t2 is visible to query t when t2 <= t and keyMask[b, t2] != 0; a query
    /// that sees no key at all gets zero output. With `dropout`, the product with v takes the
    /// weights after dropout; att keeps them before (backward regenerates the mask).
    public static func attentionForward(out: Output, att: Output, qkv: Input, keyMask: UnsafePointer<Int32>?,
                                        batch: Int, time T: Int, channels C: Int, heads NH: Int, scale: Float,
                                        dropout: AttentionDropout? = nil) {
        let hs = C / NH
        parallelFor(batch * NH) { pairs in
            ScratchSpace.with(count: dropout == nil ? 1 : T * T) { dropped in
                for pair in pairs {
                    let (b, h) = pair.quotientAndRemainder(dividingBy: NH)
                    let head = AttentionHead(qkv: qkv + b * T * 3 * C + h * hs, channels: C)
                    let weights = att + pair * T * T
                    // scores = q·kᵀ, then the masked, scaled softmax of each row; y = weights·v.
                    MatrixMultiply.multiply(m: T, n: T, k: hs, a: head.q, b: head.k.transposed, c: weights, ldc: T, start: .zero, threads: 1)
                    for t in 0..<T {
                        causalSoftmax(weights + t * T, visible: t + 1, length: T, keyMask: keyMask.map { $0 + b * T }, scale: scale)
                    }
                    var product = UnsafePointer(weights)
                    if let dropout {
                        dropout.apply(weights, into: dropped, time: T, example: b, head: h)
                        product = UnsafePointer(dropped)
                    }
                    MatrixMultiply.multiply(m: T, n: hs, k: T, a: .rowMajor(product, leadingDimension: T, transposed: false), b: head.v,
                                            c: out + b * T * C + h * hs, ldc: C, start: .zero, threads: 1)
                }
            }
        }
    }

    /// Dropout on the attention weights of a batch: the mask of weight (t, t2) of head h is at
    /// position (h·P + t)·P + t2 of its example, P the model's n_positions, so that it does not
    /// depend on the batch's padded length.
    public struct AttentionDropout: Sendable {
        public let mask: DropoutMask
        public let firstExample: Int
        public let maximumLength: Int

        public init(mask: DropoutMask, firstExample: Int, maximumLength: Int) {
            (self.mask, self.firstExample, self.maximumLength) = (mask, firstExample, maximumLength)
        }

        /// dropped[T, T] = weights[T, T] (causal: zero past the diagonal) with the mask applied;
        /// `weights` and `dropped` may be the same.
        func apply(_ weights: Input, into dropped: Output, time T: Int, example b: Int, head h: Int) {
            for t in 0..<T {
                if weights != UnsafePointer(dropped) { (dropped + t * T).update(from: weights + t * T, count: T) }
                mask.apply(dropped + t * T, count: t + 1, example: firstExample + b, first: (h * maximumLength + t) * maximumLength)
            }
        }
    }

    /// row[0..<length] = softmax(scale · row) over the first `visible` entries whose key is not
    /// masked out; 0 everywhere else (everywhere, when nothing is visible).
    @inline(__always)
    static func causalSoftmax(_ row: Output, visible: Int, length: Int, keyMask: UnsafePointer<Int32>?, scale: Float) {
        var maxima = SIMD16<Float>(repeating: -.infinity)
        forEachChunk(0..<visible) { t, lanes in
            var score = load16(row + t, lanes, padding: -.infinity) * scale
            if let keyMask {
                var keys = SIMD16<Int32>(repeating: 1)
                for lane in 0..<lanes { keys[lane] = keyMask[t + lane] }
                score.replace(with: -.infinity, where: keys .== 0)
            }
            maxima = maximum16(maxima, score)
            store16(score, row + t, lanes)
        }
        let maximum = maxima.max()
        guard maximum > -.infinity else {
            row.update(repeating: 0, count: length)
            return
        }
        var sums = SIMD16<Float>()
        forEachChunk(0..<visible) { t, lanes in
            let e = exp16(load16(row + t, lanes, padding: -.infinity) - maximum)
            sums += e
            store16(e, row + t, lanes)
        }
        let inverse = 1 / sums.sum()
        forEachChunk(0..<visible) { t, lanes in store16(load16(row + t, lanes) * inverse, row + t, lanes) }
        (row + visible).update(repeating: 0, count: length - visible)
    }

    /// dqkv[B, T, 3C] += ∂L/∂qkv, from dout[B, T, C], the stored att[B, NH, T, T] and qkv, with the
    /// forward pass's `dropout`.
    public static func attentionBackward(dqkv: Output, dout: Input, att: Input, qkv: Input,
                                         batch: Int, time T: Int, channels C: Int, heads NH: Int, scale: Float,
                                         dropout: AttentionDropout? = nil) {
        let hs = C / NH
        parallelFor(batch * NH) { pairs in
            ScratchSpace.with(count: (dropout == nil ? 1 : 2) * T * T) { scratch in
                let dScores = scratch, dropped = scratch + T * T
                for pair in pairs {
                    let (b, h) = pair.quotientAndRemainder(dividingBy: NH)
                    let head = AttentionHead(qkv: qkv + b * T * 3 * C + h * hs, channels: C)
                    let dHead = dqkv + b * T * 3 * C + h * hs
                    let weights = StridedMatrix.rowMajor(att + pair * T * T, leadingDimension: T, transposed: false)
                    var product = weights
                    if let dropout {
                        dropout.apply(weights.base, into: dropped, time: T, example: b, head: h)
                        product.base = UnsafePointer(dropped)
                    }
                    let dy = StridedMatrix.rowMajor(dout + b * T * C + h * hs, leadingDimension: C, transposed: false)
                    // Through y = product·v: ∂product = dy·vᵀ and ∂v += productᵀ·dy.
                    MatrixMultiply.multiply(m: T, n: T, k: hs, a: dy, b: head.v.transposed, c: dScores, ldc: T, start: .zero, threads: 1)
                    MatrixMultiply.multiply(m: T, n: hs, k: T, a: product.transposed, b: dy, c: dHead + 2 * C, ldc: 3 * C,
                                            start: .accumulate, threads: 1)
                    // Through the dropout: ∂weights = ∂product · mask.
                    dropout?.apply(dScores, into: dScores, time: T, example: b, head: h)
                    // Through the softmax: ∂score = w·(∂w - Σ w·∂w)·scale (0 where w is 0, past the diagonal too).
                    for t in 0..<T {
                        let w = weights.base + t * T, d = dScores + t * T
                        var weightedSums = SIMD16<Float>()
                        forEachChunk(0..<T) { t2, lanes in weightedSums.addProduct(load16(w + t2, lanes), load16(d + t2, lanes)) }
                        let weightedSum = weightedSums.sum()
                        forEachChunk(0..<T) { t2, lanes in
                            store16(load16(w + t2, lanes) * (load16(d + t2, lanes) - weightedSum) * scale, d + t2, lanes)
                        }
                    }
                    // Through score = q·kᵀ: ∂q += ∂score·k, ∂k += ∂scoreᵀ·q.
                    let dScoreMatrix = StridedMatrix.rowMajor(dScores, leadingDimension: T, transposed: false)
                    MatrixMultiply.multiply(m: T, n: hs, k: T, a: dScoreMatrix, b: head.k, c: dHead, ldc: 3 * C,
                                            start: .accumulate, threads: 1)
                    MatrixMultiply.multiply(m: T, n: hs, k: T, a: dScoreMatrix.transposed, b: head.q, c: dHead + C, ldc: 3 * C,
                                            start: .accumulate, threads: 1)
                }
            }
        }
    }

    /// One head's q, k and v of one sequence: [T, hs] matrices inside qkv[T, 3C].
    private struct AttentionHead {
        let q, k, v: StridedMatrix
        init(qkv: Input, channels C: Int) {
            q = .rowMajor(qkv, leadingDimension: 3 * C, transposed: false)
            k = .rowMajor(qkv + C, leadingDimension: 3 * C, transposed: false)
            v = .rowMajor(qkv + 2 * C, leadingDimension: 3 * C, transposed: false)
        }
    }

    // MARK: GELU (tanh approximation, Hugging Face's gelu_new)

    static let geluScale = Float((2.0 / Double.pi).squareRoot())

    /// out[n] = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), computed as x·σ(2u) with u the tanh's
    /// argument (0.5·(1 + tanh u) = σ(2u)), which needs one exponential and never cancels.
    public static func geluForward(out: Output, inp: Input, count: Int) {
        parallelFor(count, grain: 16, minimumPerThread: 4096) { range in
            forEachChunk(range) { i, lanes in
                let x = load16(inp + i, lanes)
                store16(x * geluSigmoid(x), out + i, lanes)
            }
        }
    }

    /// dinp[n] = gelu'(inp) · dout (overwritten; may alias dout). With s = σ(2u):
    /// gelu' = s + 2x·s·(1 - s)·u'(x), u' = √(2/π)·(1 + 3·0.044715·x²).
    public static func geluBackward(dinp: Output, inp: Input, dout: Input, count: Int) {
        parallelFor(count, grain: 16, minimumPerThread: 4096) { range in
            forEachChunk(range) { i, lanes in
                let x = load16(inp + i, lanes)
                let s = geluSigmoid(x)
                let slope = geluScale * (1 + 3 * 0.044715 * x * x)
                let local = s + 2 * x * s * (1 - s) * slope
                store16(local * load16(dout + i, lanes), dinp + i, lanes)
            }
        }
    }

    /// σ(2u) = 1 / (1 + e^(-2u)), u = √(2/π)·(x + 0.044715·x³).
    @inline(__always)
    private static func geluSigmoid(_ x: SIMD16<Float>) -> SIMD16<Float> {
        let u = geluScale * x.addingProduct(0.044715 * x * x, x)
        return 1 / (1 + exp16(-2 * u))
    }

    // MARK: Residual

    /// out[n] += inp[n]
    public static func residualAdd(out: Output, inp: Input, count: Int) {
        parallelFor(count, grain: 16, minimumPerThread: 16384) { range in
            forEachChunk(range) { i, lanes in store16(load16(out + i, lanes) + load16(inp + i, lanes), out + i, lanes) }
        }
    }

    // MARK: Softmax cross-entropy over the vocabulary

    /// For each row with target ≥ 0: losses[row] = logsumexp(logits[row]) - logits[row, target]
    /// (accumulated in Double), and probabilities[row] = softmax(logits[row]). Rows with a negative
    /// target get loss 0. Returns the sum of the losses.
    public static func crossEntropyForward(losses: Output, probabilities: Output, logits: Input, targets: UnsafePointer<Int32>,
                                           rows: Int, vocabulary V: Int) -> Double {
        var rowLosses = [Double](repeating: 0, count: rows)
        rowLosses.withUnsafeMutableBufferPointer { rowLosses in
            parallelFor(rows) { range in
                for r in range {
                    let row = logits + r * V, p = probabilities + r * V
                    var maxima = SIMD16<Float>(repeating: -.infinity)
                    forEachChunk(0..<V) { v, lanes in maxima = maximum16(maxima, load16(row + v, lanes, padding: -.infinity)) }
                    let maximum = maxima.max()
                    var sumsLow = SIMD8<Double>(), sumsHigh = SIMD8<Double>()
                    forEachChunk(0..<V) { v, lanes in
                        let e = exp16(load16(row + v, lanes, padding: -.infinity) - maximum)
                        sumsLow += SIMD8<Double>(e.lowHalf)
                        sumsHigh += SIMD8<Double>(e.highHalf)
                        store16(e, p + v, lanes)
                    }
                    let sum = (sumsLow + sumsHigh).sum()
                    let inverse = Float(1 / sum)
                    forEachChunk(0..<V) { v, lanes in store16(load16(p + v, lanes) * inverse, p + v, lanes) }
                    let target = Int(targets[r])
                    rowLosses[r] = target >= 0 ? log(sum) + Double(maximum) - Double(row[target]) : 0
                    losses[r] = Float(rowLosses[r])
                }
            }
        }
        return rowLosses.reduce(0, +)
    }

    /// dlogits[rows, V] = (softmax - onehot(target))·scale for rows with a target, 0 elsewhere;
    /// written over `probabilities` in place.
    public static func crossEntropyBackward(probabilities: Output, targets: UnsafePointer<Int32>, rows: Int, vocabulary V: Int, scale: Float) {
        parallelFor(rows) { range in
            for r in range {
                let p = probabilities + r * V
                let target = Int(targets[r])
                if target < 0 {
                    p.update(repeating: 0, count: V)
                    continue
                }
                forEachChunk(0..<V) { v, lanes in store16(load16(p + v, lanes) * scale, p + v, lanes) }
                p[target] -= scale
            }
        }
    }
}
