import Kernels

/// A model's matrices laid out for decoding (StreamingMatrix), in fp32 or rounded to bfloat16:
/// made once per generation run and shared by its sessions. The tied head is wteᵀ; token
/// embeddings are read back from it, so with bf16 they are the same rounded values.
public final class DecodingWeights: @unchecked Sendable {  // read-only after init
    public let dtype: WeightsDType
    let blocks: [(attention: DecodingMatrix, attentionProjection: DecodingMatrix, fc: DecodingMatrix, fcProjection: DecodingMatrix)]
    let head: DecodingMatrix

    public init(model: GPT2Model, dtype: WeightsDType) {
        let (config, layout, p) = (model.config, model.layout, model.parameters.pointer)
        let (C, I) = (config.nEmbd, config.innerSize)
        func matrix(_ offset: Int, _ k: Int, _ n: Int) -> DecodingMatrix {
            DecodingMatrix(dtype, k: k, n: n) { row, column in p[offset + row * n + column] }
        }
        self.dtype = dtype
        blocks = layout.blocks.map { block in
            (matrix(block.attentionWeight, C, 3 * C), matrix(block.attentionProjectionWeight, C, C),
             matrix(block.fcWeight, C, I), matrix(block.fcProjectionWeight, I, C))
        }
        head = DecodingMatrix(dtype, k: C, n: config.vocabSize) { channel, token in p[layout.tokenEmbedding + token * C + channel] }
    }

    /// A weight as this storage type holds it.
    func rounded(_ value: Float) -> Float { dtype == .bfloat16 ? BFloat16(value).floatValue : value }
}
