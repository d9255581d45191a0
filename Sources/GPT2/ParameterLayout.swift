/// One named tensor inside a flat buffer: Hugging Face's name and shape, and where it starts.
public struct ParameterTensor: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    public let offset: Int
    public var count: Int { shape.reduce(1, *) }
    public var range: Range<Int> { offset..<(offset + count) }
}

/// Offsets of one transformer block's tensors in the flat buffer.
public struct BlockOffsets: Sendable {
    public let ln1Weight, ln1Bias, attentionWeight, attentionBias, attentionProjectionWeight, attentionProjectionBias: Int
    public let ln2Weight, ln2Bias, fcWeight, fcBias, fcProjectionWeight, fcProjectionBias: Int
}

/// Where every GPT-2 parameter lives in one contiguous buffer. Blocks are laid out one after the
/// other, so a layer's parameters (and gradients) form one contiguous range.
public struct ParameterLayout: Sendable {
    public static let prefix = "transformer."

    public let tensors: [ParameterTensor]
    public let totalCount: Int
    public let tokenEmbedding: Int
    public let positionEmbedding: Int
    public let blocks: [BlockOffsets]
    public let finalNormWeight: Int
    public let finalNormBias: Int
    private let indexByName: [String: Int]

    public init(config: GPT2Config) {
        let (C, I, V, P) = (config.nEmbd, config.innerSize, config.vocabSize, config.nPositions)
        var tensors: [ParameterTensor] = []
        var offset = 0
        func add(_ name: String, _ shape: [Int]) -> Int {
            let tensor = ParameterTensor(name: Self.prefix + name, shape: shape, offset: offset)
            tensors.append(tensor)
            offset += tensor.count
            return tensor.offset
        }
        tokenEmbedding = add("wte.weight", [V, C])
        positionEmbedding = add("wpe.weight", [P, C])
        blocks = (0..<config.nLayer).map { layer in
            let h = "h.\(layer)."
            // Conv1D weights are (in, out), as Hugging Face stores them.
            return BlockOffsets(
                ln1Weight: add(h + "ln_1.weight", [C]), ln1Bias: add(h + "ln_1.bias", [C]),
                attentionWeight: add(h + "attn.c_attn.weight", [C, 3 * C]), attentionBias: add(h + "attn.c_attn.bias", [3 * C]),
                attentionProjectionWeight: add(h + "attn.c_proj.weight", [C, C]), attentionProjectionBias: add(h + "attn.c_proj.bias", [C]),
                ln2Weight: add(h + "ln_2.weight", [C]), ln2Bias: add(h + "ln_2.bias", [C]),
                fcWeight: add(h + "mlp.c_fc.weight", [C, I]), fcBias: add(h + "mlp.c_fc.bias", [I]),
                fcProjectionWeight: add(h + "mlp.c_proj.weight", [I, C]), fcProjectionBias: add(h + "mlp.c_proj.bias", [C]))
        }
        finalNormWeight = add("ln_f.weight", [C])
        finalNormBias = add("ln_f.bias", [C])
        self.tensors = tensors
        self.totalCount = offset
        self.indexByName = Dictionary(uniqueKeysWithValues: tensors.enumerated().map { ($1.name, $0) })
    }

    /// The ranges of the buffer in the order backward finishes their gradients: the final
    /// LayerNorm, the blocks from last to first, then the embeddings. Each adjoins the one before
    /// from below and together they cover the buffer.
    public var gradientReadyRanges: [Range<Int>] {
        var ranges = [finalNormWeight..<totalCount]
        for (index, block) in blocks.enumerated().reversed() {
            ranges.append(block.ln1Weight..<(index + 1 < blocks.count ? blocks[index + 1].ln1Weight : finalNormWeight))
        }
        ranges.append(0..<(blocks.first?.ln1Weight ?? finalNormWeight))
        return ranges
    }

    /// Looks a tensor up by its Hugging Face name, with or without the `transformer.` prefix.
    public func tensor(named name: String) -> ParameterTensor? {
        if let index = indexByName[name] ?? indexByName[Self.prefix + name] { return tensors[index] }
        return nil
    }
}
