import Kernels

/// Which of a batch's dropout masks apply: the run's seed, the optimiser step, and where the
/// batch's first example sits in that step's global batch. With the element's layer, site and
/// position, that is the whole of a mask's key, so a mask is the same on any rank, in any
/// micro-batch split, with any thread count and after a resume.
public struct DropoutKey: Sendable, Equatable {
    public var seed: UInt64
    public var step: Int
    public var firstExample: Int
    public init(seed: UInt64, step: Int, firstExample: Int) {
        self.seed = seed
        self.step = step
        self.firstExample = firstExample
    }
}

/// Where in the model a mask applies (GPT2LMHeadModel's `drop`, `attn_dropout`, `resid_dropout`
/// and the MLP's `dropout`); with the layer, it picks the mask's stream.
public enum DropoutSite: Int, Sendable, CaseIterable {
    case embedding, attention, attentionResidual, mlpResidual

    func stream(layer: Int) -> UInt32 { UInt32(layer * Self.allCases.count + rawValue) }
}

extension DropoutMask {
    /// The mask of `site` in `layer`.
    public init(probability: Double, seed: UInt64, step: Int, site: DropoutSite, layer: Int) {
        self.init(probability: probability, seed: seed, step: step, stream: site.stream(layer: layer))
    }
}
