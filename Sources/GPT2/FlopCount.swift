extension GPT2Config {
    /// Floating-point operations of one training step (forward and backward) per token at sequence
    /// length `T`: 6 per weight of every matrix multiplication (the tied head included), plus the
    /// attention scores and their weighted sum, which grow with the causal context (T/2 on average).
    public func trainingFlopsPerToken(sequenceLength T: Int) -> Double {
        let C = Double(nEmbd), L = Double(nLayer)
        let matmulWeights = L * (3 * C * C + C * C + 2 * C * Double(innerSize)) + Double(vocabSize) * C
        let attention = L * 2 * 2 * C * Double(T) / 2
        return 6 * matmulWeights + 3 * attention
    }
}
