extension Kernels {
    /// The constants of one AdamW step (torch's single-tensor formula), for `adamW`.
    public struct AdamWStep: Sendable {
        public var decayFactor: Float     // 1 - lr·weight_decay (1 where there is no decay)
        public var stepSize: Float        // lr / (1 - β1^t)
        public var secondCorrection: Float  // √(1 - β2^t)
        public var beta1Complement: Float, beta2: Float, beta2Complement: Float, epsilon: Float
        public var gradientScale: Float     // gradient clipping's factor, applied as each gradient is read
        public init(decayFactor: Float, stepSize: Float, secondCorrection: Float, beta1Complement: Float, beta2: Float,
                    beta2Complement: Float, epsilon: Float, gradientScale: Float = 1) {
            (self.decayFactor, self.stepSize, self.secondCorrection, self.gradientScale) = (decayFactor, stepSize, secondCorrection, gradientScale)
            (self.beta1Complement, self.beta2, self.beta2Complement, self.epsilon) = (beta1Complement, beta2, beta2Complement, epsilon)
        }
    }

    /// p[n], m[n], v[n] updated from g[n]·gradientScale in one pass: p ← p·decay; m ← m + (1-β1)(g - m);
    /// v ← β2·v + (1-β2)·g²; p ← p - stepSize · m / (√v / √(1-β2^t) + ε). Element-wise, so the
    /// result does not depend on the thread count.
    public static func adamW(parameters p: Output, gradients g: Input, firstMoment m: Output, secondMoment v: Output,
                             count: Int, step s: AdamWStep) {
        parallelFor(count, grain: 16, minimumPerThread: 1 << 14) { range in
            forEachChunk(range) { i, lanes in
                let gradient = load16(g + i, lanes) * s.gradientScale
                let parameter = load16(p + i, lanes) * s.decayFactor
                let oldMean = load16(m + i, lanes)
                let mean = oldMean + s.beta1Complement * (gradient - oldMean)
                let variance = load16(v + i, lanes) * s.beta2 + s.beta2Complement * gradient * gradient
                store16(mean, m + i, lanes)
                store16(variance, v + i, lanes)
                store16(parameter - s.stepSize * (mean / (variance.squareRoot() / s.secondCorrection + s.epsilon)), p + i, lanes)
            }
        }
    }

    /// Σ x[i]², summed in fixed blocks whose Double totals are added in order, so the result does
    /// not depend on the thread count.
    public static func sumOfSquares(_ x: Input, count: Int) -> Double {
        let block = 1 << 14
        let blocks = (count + block - 1) / block
        return ScratchSpace.with(count: 2 * blocks) { scratch in
            let totals = UnsafeMutableRawPointer(scratch).bindMemory(to: Double.self, capacity: blocks)
            parallelFor(blocks) { range in
                for index in range {
                    var sums = SIMD16<Float>()
                    forEachChunk((index * block)..<min(count, (index + 1) * block)) { i, lanes in
                        let value = load16(x + i, lanes)
                        sums.addProduct(value, value)
                    }
                    totals[index] = (0..<16).reduce(0.0) { $0 + Double(sums[$1]) }
                }
            }
            var total = 0.0
            for index in 0..<blocks { total += totals[index] }
            return total
        }
    }
}
