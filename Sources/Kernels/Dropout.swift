/// Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a
/// counter-based generator, so any random word is a pure function of (key, counter) and can be
/// computed by whichever thread, rank or pass needs it, in any order.
public enum Philox4x32 {
    static let multipliers: (UInt64, UInt64) = (0xD251_1F53, 0xCD9E_8D57)
    static let keyIncrements: (UInt32, UInt32) = (0x9E37_79B9, 0xBB67_AE85)

    /// Ten rounds over four independent blocks at once: counter word i of block j is ci[j].
    @inline(__always)
    static func rounds(_ c0: SIMD4<UInt32>, _ c1: SIMD4<UInt32>, _ c2: SIMD4<UInt32>, _ c3: SIMD4<UInt32>,
                       key: SIMD2<UInt32>) -> (SIMD4<UInt32>, SIMD4<UInt32>, SIMD4<UInt32>, SIMD4<UInt32>) {
        var (c0, c1, c2, c3) = (c0, c1, c2, c3)
        var (k0, k1) = (key[0], key[1])
        for _ in 0..<10 {
            let (high0, low0) = multiplyHighLow(c0, multipliers.0)
            let (high1, low1) = multiplyHighLow(c2, multipliers.1)
            (c0, c1, c2, c3) = (high1 ^ c1 ^ SIMD4(repeating: k0), low1, high0 ^ c3 ^ SIMD4(repeating: k1), low0)
            k0 &+= keyIncrements.0
            k1 &+= keyIncrements.1
        }
        return (c0, c1, c2, c3)
    }

    /// The 64-bit products' high and low words (one vpmuludq per four lanes).
    @inline(__always)
    private static func multiplyHighLow(_ value: SIMD4<UInt32>, _ multiplier: UInt64) -> (high: SIMD4<UInt32>, low: SIMD4<UInt32>) {
        let product = SIMD4<UInt64>(truncatingIfNeeded: value) &* SIMD4(repeating: multiplier)
        return (SIMD4(truncatingIfNeeded: product &>> 32), SIMD4(truncatingIfNeeded: product))
    }

    /// One block: the four output words for `counter` under `key` (Random123's philox4x32_R(10, …)).
    public static func block(counter: SIMD4<UInt32>, key: SIMD2<UInt32>) -> SIMD4<UInt32> {
        let (w0, w1, w2, w3) = rounds(SIMD4(repeating: counter[0]), SIMD4(repeating: counter[1]), SIMD4(repeating: counter[2]),
                                      SIMD4(repeating: counter[3]), key: key)
        return SIMD4(w0[0], w1[0], w2[0], w3[0])
    }
}

/// Inverted dropout at one site of one layer (one stream): element e of example x is kept with probability
/// 1 - p and then scaled by 1/(1 - p), or set to 0. Whether it is kept is decided by a Philox word:
/// counter (e / 16 · 4 + j, high bits of that and the stream, x, step) with j = e mod 4 picks the
/// block and (e / 4) mod 4 the word, under the key = the seed; the element is dropped when the
/// word is below p · 2³².
public struct DropoutMask: Sendable {
    public let probability: Double
    let key: SIMD2<UInt32>
    let step: UInt32
    let stream: UInt32
    let threshold: UInt32
    let scale: Float

    /// `stream` tells the model's sites apart (16 bits of it enter the counter).
    public init(probability: Double, seed: UInt64, step: Int, stream: UInt32) {
        self.probability = probability
        key = SIMD2(UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
        self.step = UInt32(truncatingIfNeeded: step)
        self.stream = stream
        threshold = probability >= 1 ? .max : UInt32((probability * 4_294_967_296).rounded(.down))
        scale = probability >= 1 ? 0 : Float(1 / (1 - probability))
    }

    /// x[i] for i in 0..<count, the elements at positions first..<first + count of `example`'s
    /// tensor at this site, multiplied by their mask value (0 or 1/(1 - p)).
    public func apply(_ x: UnsafeMutablePointer<Float>, count: Int, example: Int, first: Int) {
        let exampleWord = UInt32(truncatingIfNeeded: example)
        var position = first
        let end = first + count
        while position < end {
            let group = position >> 4
            let words = words(group: group, example: exampleWord)
            let lanes = min(16 - (position & 15), end - position)
            let offset = position & 15
            let target = x + (position - first)
            if offset == 0 && lanes == 16 {
                let kept = words .>= SIMD16(repeating: threshold)
                store16((load16(target) * scale).replacing(with: 0, where: .!kept), target)
            } else {
                for lane in 0..<lanes { target[lane] = words[offset + lane] >= threshold ? target[lane] * scale : 0 }
            }
            position += lanes
        }
    }

    /// The 16 random words of positions 16·group ..< 16·group + 16, in position order.
    @inline(__always)
    func words(group: Int, example: UInt32) -> SIMD16<UInt32> {
        let block = UInt64(group) << 2
        let c0 = SIMD4<UInt32>(repeating: UInt32(truncatingIfNeeded: block)) &+ SIMD4(0, 1, 2, 3)
        let c1 = SIMD4<UInt32>(repeating: UInt32(truncatingIfNeeded: block >> 32) << 16 | stream)
        let (w0, w1, w2, w3) = Philox4x32.rounds(c0, c1, SIMD4(repeating: example), SIMD4(repeating: step), key: key)
        return SIMD16(lowHalf: SIMD8(lowHalf: w0, highHalf: w1), highHalf: SIMD8(lowHalf: w2, highHalf: w3))
    }
}

extension Kernels {
    /// Dropout of `examples` consecutive examples of `elementsPerExample` floats each (their
    /// position in the example is their offset), the first example being `firstExample`.
    public static func dropout(_ x: Output, mask: DropoutMask, examples: Int, firstExample: Int, elementsPerExample: Int) {
        let chunk = 4096
        let chunksPerExample = (elementsPerExample + chunk - 1) / chunk
        parallelFor(examples * chunksPerExample, minimumPerThread: 4) { range in
            for index in range {
                let (example, part) = index.quotientAndRemainder(dividingBy: chunksPerExample)
                let first = part * chunk
                mask.apply(x + example * elementsPerExample + first, count: min(chunk, elementsPerExample - first),
                           example: firstExample + example, first: first)
            }
        }
    }
}
