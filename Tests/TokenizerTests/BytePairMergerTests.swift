import Testing
@testable import Tokenizer

@Suite struct BytePairMergerTests {
    /// The scanning merger (short pieces) and the queue merger (long pieces) must agree on any
    /// piece, here random pieces drawn from a few characters so that merges chain and repeat.
    @Test func scanningAndQueueMergersAgree() throws {
        let tokenizer = try TestData.gpt2()
        let model = tokenizer.bytePairModel
        var generator = SplitMix64(seed: 42)
        let alphabet = Array("aeinst ĠthheTH12!,'".utf8)
        var queueMerger = QueueMerger()
        for _ in 0..<2_000 {
            let length = Int(generator.next() % 80) + 1
            let piece = (0..<length).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] }
            var scanned: [Int] = []
            var queued: [Int] = []
            piece.withUnsafeBufferPointer { bytes in
                BytePairMerger.mergeByScanning(bytes, model: model, into: &scanned)
                queueMerger.merge(bytes, model: model, into: &queued)
            }
            #expect(scanned == queued, "\(piece)")
        }
    }
}

/// A small seeded generator, so that failures can be reproduced.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }
}
