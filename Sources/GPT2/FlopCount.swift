extension GPT2Config {
    /// Floating-point operations of one training step (forward and backward) per token at sequence
    /// length `T`: 6 per weight of every matrix multiplication (the tied head included), plus the
    /// attention scores and their weighted sum, which grow with the causal context (T/2 on average).
    /// The weights of every matrix multiplication, the tied head included: what one decoding step
    /// reads from memory, and 2 FLOPs per token each.
    public var matrixWeightCount: Int {
        nLayer * (3 * nEmbd * nEmbd + nEmbd * nEmbd + 2 * nEmbd * innerSize) + vocabSize * nEmbd
    }

    public func trainingFlopsPerToken(sequenceLength T: Int) -> Double {
        let C = Double(nEmbd), L = Double(nLayer)
        let attention = L * 2 * 2 * C * Double(T) / 2
        return 6 * Double(matrixWeightCount) + 3 * attention
    }
}
