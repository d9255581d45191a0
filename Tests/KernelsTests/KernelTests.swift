import Foundation
import GPT2
@testable import Kernels
import TestSupport
import Testing

/// The optimised kernels against plain reference implementations.
struct KernelTests {
    /// One matrix product to check: sizes, which operands are stored transposed, whether C
    /// accumulates, and how many threads may share it.
    struct Product: CustomTestStringConvertible, Sendable {
        let m, n, k: Int
        let transposeA, transposeB, accumulate: Bool
        let threads: Int
        var testDescription: String {
            "\(m)x\(n)x\(k) \(transposeA ? "Aᵀ" : "A")·\(transposeB ? "Bᵀ" : "B")\(accumulate ? " +=" : "") threads=\(threads)"
        }
    }

    /// Odd sizes that leave partial tiles on every edge, in every form; then one that crosses the
    /// kc and nc blocks.
    static let products: [Product] = {
        var products: [Product] = []
        for (m, n, k) in [(37, 53, 29), (5, 17, 1), (61, 70, 41)] {
            for (transposeA, transposeB) in [(false, false), (true, false), (false, true), (true, true)] {
                for accumulate in [false, true] {
                    for threads in [1, 2] {
                        products.append(Product(m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB,
                                                accumulate: accumulate, threads: threads))
                    }
                }
            }
        }
        for (transposeA, transposeB) in [(false, false), (true, false), (false, true), (true, true)] {
            products.append(Product(m: 13, n: 785, k: 260, transposeA: transposeA, transposeB: transposeB,
                                    accumulate: transposeA, threads: 2))
        }
        return products
    }()

    /// The operands of `product` (seeded by its sizes) as stored, and the initial C.
    static func operands(_ product: Product) -> (a: [Float], b: [Float], initial: [Float]) {
        let (m, n, k) = (product.m, product.n, product.k)
        var generator = SeededGenerator(seed: UInt64(m * 1_000_003 + n * 1009 + k))
        let a = (0..<(m * k)).map { _ in Float.random(in: -1...1, using: &generator) }
        let b = (0..<(k * n)).map { _ in Float.random(in: -1...1, using: &generator) }
        let initial = (0..<(m * n)).map { _ in Float.random(in: -1...1, using: &generator) }
        return (a, b, initial)
    }

    /// C for `product` through `kernel`; with `bias`, C starts as the operands' first n floats of B
    /// in every row instead.
    static func multiply(_ product: Product, kernel: MatrixMultiply.Kernel, bias: Bool = false) -> [Float] {
        let (m, n, k) = (product.m, product.n, product.k)
        let (a, b, initial) = operands(product)
        var c = initial
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    MatrixMultiply.multiply(
                        m: m, n: n, k: k,
                        a: .rowMajor(a.baseAddress!, leadingDimension: product.transposeA ? m : k, transposed: product.transposeA),
                        b: .rowMajor(b.baseAddress!, leadingDimension: product.transposeB ? k : n, transposed: product.transposeB),
                        c: c.baseAddress!, ldc: n, start: bias ? .rowVector(b.baseAddress!) : product.accumulate ? .accumulate : .zero,
                        threads: product.threads, kernel: kernel)
                }
            }
        }
        return c
    }

    @Test(arguments: products)
    func matmulMatchesNaiveProduct(_ product: Product) {
        let (m, n, k) = (product.m, product.n, product.k)
        let (a, b, initial) = Self.operands(product)
        // op(A) as [m, k] and op(B) as [k, n] in Double, from their stored layouts.
        var opA = [Double](repeating: 0, count: m * k), opB = [Double](repeating: 0, count: k * n)
        for i in 0..<m { for p in 0..<k { opA[i * k + p] = Double(product.transposeA ? a[p * m + i] : a[i * k + p]) } }
        for p in 0..<k { for j in 0..<n { opB[p * n + j] = Double(product.transposeB ? b[j * k + p] : b[p * n + j]) } }
        let c = Self.multiply(product, kernel: MatrixMultiply.Kernel(.avx2))
        // Float rounding grows with the terms' magnitudes, not with their (cancelling) sum.
        var worst = 0.0
        opA.withUnsafeBufferPointer { opA in
            opB.withUnsafeBufferPointer { opB in
                for i in 0..<m {
                    for j in 0..<n {
                        var exact = product.accumulate ? Double(initial[i * n + j]) : 0, magnitude = abs(exact)
                        for p in 0..<k {
                            let term = opA[i * k + p] * opB[p * n + j]
                            exact += term
                            magnitude += abs(term)
                        }
                        worst = max(worst, abs(Double(c[i * n + j]) - exact) / (magnitude + 1e-30))
                    }
                }
            }
        }
        #expect(worst < 1e-6, "largest error relative to Σ|terms|: \(worst)")
    }

    /// The AVX-512 micro-kernel does each element's fused multiply-adds in the same order as the
    /// AVX2 one, so it gives the same bits (and so passes every parity test the AVX2 path passes),
    /// with its own tile (12 × 32) and blocking: edges, the bias start, and products that cross kc
    /// and its nc block.
    @Test(.enabled(if: MatrixMultiply.Kernel.available(.avx512), "skipped: this CPU cannot run the AVX-512 path (it has \(CPU.current.featureNames.joined(separator: ", ")))"),
          arguments: products + [Product(m: 25, n: MatrixMultiply.Kernel(.avx512).nc + 33, k: 300, transposeA: false, transposeB: false, accumulate: false, threads: 2),
                                 Product(m: 1, n: 15, k: 17, transposeA: true, transposeB: true, accumulate: false, threads: 1),
                                 Product(m: 33, n: 1, k: 15, transposeA: false, transposeB: true, accumulate: true, threads: 2)])
    func avx512PathGivesTheAVX2PathsBits(_ product: Product) {
        for bias in [false, true] {
            let reference = Self.multiply(product, kernel: MatrixMultiply.Kernel(.avx2), bias: bias)
            let wide = Self.multiply(product, kernel: MatrixMultiply.Kernel(.avx512), bias: bias)
            #expect(reference.map(\.bitPattern) == wide.map(\.bitPattern), "bias: \(bias)")
        }
    }

    /// Edge shapes for the bfloat16 kernel: 1, 15, 17 and 33 rows and columns, odd depths (and one
    /// past kc), every storage form, the three starts, two threads.
    static let bfloat16Products: [Product] = [(1, 15, 17), (15, 17, 1), (17, 33, 15), (33, 1, 33), (33, 17, 257), (17, 15, 300)].flatMap { m, n, k in
        [(false, false), (true, false), (false, true), (true, true)].map { transposeA, transposeB in
            Product(m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB, accumulate: transposeA != transposeB, threads: m > 16 ? 2 : 1)
        }
    }

    /// `--bf16`'s products equal the exact product of the operands rounded to bfloat16 (nearest,
    /// ties to even), to fp32 rounding: products of bfloat16 values are exact in fp32, so only
    /// the fp32 sums round.
    @Test(.enabled(if: MatrixMultiply.Kernel.available(.avx512bf16), "skipped: this CPU has no bfloat16 kernel (it has \(CPU.current.featureNames.joined(separator: ", ")))"),
          arguments: bfloat16Products)
    func bfloat16ProductsAreTheProductsOfTheRoundedOperands(_ product: Product) {
        let (m, n, k) = (product.m, product.n, product.k)
        let (a, b, initial) = Self.operands(product)
        let rounded = { (value: Float) in Double(BFloat16(value).floatValue) }
        for bias in [false, true] {
            let c = Self.multiply(product, kernel: MatrixMultiply.Kernel(.avx512bf16), bias: bias)
            var worst = 0.0, unrounded = 0.0
            for i in 0..<m {
                for j in 0..<n {
                    var exact = bias ? Double(b[j]) : product.accumulate ? Double(initial[i * n + j]) : 0
                    var magnitude = abs(exact), fp32 = exact
                    for p in 0..<k {
                        let x = product.transposeA ? a[p * m + i] : a[i * k + p], y = product.transposeB ? b[j * k + p] : b[p * n + j]
                        exact += rounded(x) * rounded(y)
                        fp32 += Double(x) * Double(y)
                        magnitude += abs(rounded(x) * rounded(y))
                    }
                    worst = max(worst, abs(Double(c[i * n + j]) - exact) / (magnitude + 1e-30))
                    unrounded = max(unrounded, abs(Double(c[i * n + j]) - fp32) / (magnitude + 1e-30))
                }
            }
            #expect(worst < 1e-6, "bias \(bias): largest error relative to Σ|terms|: \(worst)")
            #expect(k < 15 || unrounded > 1e-4, "the operands were rounded (error against the unrounded product \(unrounded))")
        }
    }

    @Test func aForcedMatmulPathMustExistAndBeRunnable() throws {
        #expect(try MatrixMultiply.Kernel.forced(environment: [:]) == nil)
        #expect(try MatrixMultiply.Kernel.forced(environment: ["GPT2_DDP_MATMUL": "avx2"]) == .avx2)
        #expect(throws: UnsupportedCPU("GPT2_DDP_MATMUL=sse: not a matmul path (avx2, avx512)")) {
            try MatrixMultiply.Kernel.forced(environment: ["GPT2_DDP_MATMUL": "sse"])
        }
        if !MatrixMultiply.Kernel.available(.avx512) {
            #expect(throws: UnsupportedCPU.self) { try MatrixMultiply.Kernel.forced(environment: ["GPT2_DDP_MATMUL": "avx512"]) }
        }
    }

    @Test func bfloat16RoundsToNearestEvenAndWidensExactly() {
        #expect(BFloat16(1).bitPattern == 0x3F80)
        #expect(BFloat16(-2).bitPattern == 0xC000)
        // 1 + 2⁻⁸ is halfway between 1 and the next bfloat16 (1 + 2⁻⁷): ties go to the even one, 1.
        #expect(BFloat16(1 + 0x1p-8).floatValue == 1)
        #expect(BFloat16(1 + 0x1p-8 + 0x1p-16).floatValue == 1 + 0x1p-7)
        #expect(BFloat16(1 + 3 * 0x1p-8).floatValue == 1 + 0x1p-6, "the tie above an odd mantissa rounds up")
        #expect(BFloat16(.infinity).floatValue == .infinity)
        #expect(BFloat16(.nan).floatValue.isNaN)
        #expect(BFloat16(Float.greatestFiniteMagnitude).floatValue == .infinity, "as PyTorch rounds it")
        var generator = SeededGenerator(seed: 3)
        for _ in 0..<1000 {
            let value = Float.random(in: -100...100, using: &generator)
            let rounded = BFloat16(value).floatValue
            #expect(abs(rounded - value) <= abs(value) * 0x1p-8, "within half a bfloat16 ulp")
            #expect(BFloat16(rounded).floatValue == rounded, "bfloat16 values are fixed points")
        }
    }

    /// Decoding's products, in both storage types, with rows beyond one pass, depths and widths
    /// off the blocks, the accumulate and bias starts, and two threads.
    @Test(arguments: [(1, 77, 45, WeightsDType.float32), (8, 1100, 96, .float32), (13, 40, 33, .float32),
                      (1, 77, 45, .bfloat16), (5, 1030, 19, .bfloat16)])
    func streamingProductsMatchTheStoredWeights(m: Int, n: Int, k: Int, dtype: WeightsDType) {
        var generator = SeededGenerator(seed: UInt64(m * 7919 + n * 31 + k))
        let a = (0..<(m * k)).map { _ in Float.random(in: -1...1, using: &generator) }
        let weights = (0..<(k * n)).map { _ in Float.random(in: -1...1, using: &generator) }
        let bias = (0..<n).map { _ in Float.random(in: -1...1, using: &generator) }
        let initial = (0..<(m * (n + 3))).map { _ in Float.random(in: -1...1, using: &generator) }
        let matrix = DecodingMatrix(dtype, k: k, n: n) { p, j in weights[p * n + j] }
        let stored = (0..<(k * n)).map { matrix.value($0 / n, $0 % n) }
        #expect(stored == weights.map { dtype == .bfloat16 ? BFloat16($0).floatValue : $0 }, "the layout holds every weight, rounded as asked")
        let savedThreads = Kernels.threadCount
        Kernels.threadCount = 2
        defer { Kernels.threadCount = savedThreads }
        for accumulate in [false, true] {
            // C is wider than the product (ldc = n + 3): the columns past n must stay as they were.
            var c = initial
            bias.withUnsafeBufferPointer { bias in
                matrix.multiply(m: m, a: a, c: &c, ldc: n + 3, start: accumulate ? .accumulate : .rowVector(bias.baseAddress!))
            }
            var worst = 0.0
            for i in 0..<m {
                for j in 0..<n {
                    let start = Double(accumulate ? initial[i * (n + 3) + j] : bias[j])
                    var exact = start, magnitude = abs(start)
                    for p in 0..<k {
                        let weight = Double(stored[p * n + j])
                        exact += Double(a[i * k + p]) * weight
                        magnitude += abs(Double(a[i * k + p]) * weight)
                    }
                    worst = max(worst, abs(Double(c[i * (n + 3) + j]) - exact) / magnitude)
                }
                for j in n..<(n + 3) { #expect(c[i * (n + 3) + j] == initial[i * (n + 3) + j]) }
            }
            #expect(worst < 1e-6, "largest error relative to Σ|terms|: \(worst)")
        }
    }

    @Test func publicMatmulAndLinearForwardUseTheSameProduct() {
        let (rows, inFeatures, outFeatures) = (7, 19, 23)
        var generator = SeededGenerator(seed: 5)
        let input = (0..<(rows * inFeatures)).map { _ in Float.random(in: -1...1, using: &generator) }
        let weight = (0..<(inFeatures * outFeatures)).map { _ in Float.random(in: -1...1, using: &generator) }
        let bias = (0..<outFeatures).map { _ in Float.random(in: -1...1, using: &generator) }
        var linear = [Float](repeating: .nan, count: rows * outFeatures)
        var product = [Float](repeating: .nan, count: rows * outFeatures)
        Kernels.linearForward(out: &linear, inp: input, weight: weight, bias: bias, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures)
        Kernels.matmul(&product, input, weight, m: rows, n: outFeatures, k: inFeatures)
        for r in 0..<rows {
            for o in 0..<outFeatures {
                #expect(abs(linear[r * outFeatures + o] - (product[r * outFeatures + o] + bias[o])) < 1e-5)
            }
        }
    }

    @Test func expMatchesTheLibraryToAFewUlps() {
        var worst: Float = 0
        var x: Float = -87
        while x < 88.1 {
            let lanes = SIMD16<Float>((0..<16).map { x + Float($0) * 0.0137 })
            let ours = exp16(lanes)
            for lane in 0..<16 {
                let reference = Foundation.exp(Double(lanes[lane]))
                worst = max(worst, Float(abs(Double(ours[lane]) - reference) / reference))
            }
            x += 0.2
        }
        #expect(worst < 3 * Float.ulpOfOne, "worst relative error \(worst)")
        let edges = exp16(SIMD16<Float>(-.infinity, -200, -88, 0, 1, 88.8, 200, .infinity, 0, 0, 0, 0, 0, 0, 0, 0))
        #expect(edges[0] == 0 && edges[1] == 0 && edges[2] == 0)
        #expect(edges[3] == 1 && abs(edges[4] - Float(M_E)) <= Float(M_E).ulp)
        #expect(edges[5] == .infinity && edges[6] == .infinity && edges[7] == .infinity)
    }

    @Test func geluMatchesTheTanhFormulaAndItsDerivative() {
        let inputs = stride(from: -30.0, through: 30.0, by: 0.173).map { Float($0) }
        var forward = [Float](repeating: 0, count: inputs.count)
        var backward = [Float](repeating: 0, count: inputs.count)
        let ones = [Float](repeating: 1, count: inputs.count)
        Kernels.geluForward(out: &forward, inp: inputs, count: inputs.count)
        Kernels.geluBackward(dinp: &backward, inp: inputs, dout: ones, count: inputs.count)
        for (i, x) in inputs.map(Double.init).enumerated() {
            let scale = (2 / Double.pi).squareRoot()
            let tanh = Foundation.tanh(scale * (x + 0.044715 * x * x * x))
            let value = 0.5 * x * (1 + tanh)
            let slope = 0.5 * (1 + tanh) + 0.5 * x * (1 - tanh * tanh) * scale * (1 + 3 * 0.044715 * x * x)
            #expect(abs(Double(forward[i]) - value) <= 1e-6 * max(1, abs(value)), "gelu(\(x))")
            #expect(abs(Double(backward[i]) - slope) <= 4e-6 * max(1, abs(slope)), "gelu'(\(x))")
        }
    }
}
