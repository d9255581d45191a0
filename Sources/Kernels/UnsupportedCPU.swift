/// A kernel path this CPU cannot run was asked for (`GPT2_DDP_MATMUL`, `--bf16`): a one-line
/// message naming the CPU and what it has.
public struct UnsupportedCPU: Error, CustomStringConvertible, Equatable {
    public let description: String

    public init(_ description: String) { self.description = description }
}
