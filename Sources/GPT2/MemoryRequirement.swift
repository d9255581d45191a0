#if canImport(Glibc)
import Glibc
#endif

/// The machine's physical memory, against which the buffers a model needs are checked before any
/// of them is allocated: a size the machine cannot hold is refused with the figures, where the
/// allocator would abort the process.
public enum PhysicalMemory {
    public static let bytes = sysconf(Int32(_SC_PHYS_PAGES)) * sysconf(Int32(_SC_PAGESIZE))

    /// Throws unless `floats` (nil: more than an Int counts) fit in physical memory; `purpose`
    /// completes "needs N bytes ..." and `source` names the config or input responsible.
    public static func require(floats: Int?, _ purpose: String, source: String? = nil) throws {
        let needed = checkedProduct(floats, MemoryLayout<Float>.stride)
        guard let needed, needed <= bytes else {
            throw ModelError.insufficientMemory(source: source, purpose: purpose, neededBytes: needed, availableBytes: bytes)
        }
    }

    /// "1.5 GiB": bytes in the largest binary unit that leaves at least 1.
    public static func format(_ bytes: Int) -> String {
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var value = Double(bytes), unit = 0
        while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        return unit == 0 ? "\(bytes) bytes" : String(format: "%.1f %@", value, units[unit])
    }
}

/// The product of sizes, nil when it (or a factor) does not fit an Int.
func checkedProduct(_ factors: Int?...) -> Int? {
    factors.reduce(1) { product, factor in
        guard let product, let factor else { return nil }
        let (result, overflow) = product.multipliedReportingOverflow(by: factor)
        return overflow ? nil : result
    }
}

/// The sum of sizes, nil when it (or a term) does not fit an Int.
func checkedSum(_ terms: Int?...) -> Int? {
    terms.reduce(0) { sum, term in
        guard let sum, let term else { return nil }
        let (result, overflow) = sum.addingReportingOverflow(term)
        return overflow ? nil : result
    }
}

extension GPT2Config {
    /// The largest vocabulary: token ids are 32-bit everywhere (batches, caches, generation).
    public static let maxVocabularySize = Int(Int32.max)

    /// The parameters this config describes, as `ParameterLayout` lays them out (the tied head
    /// counted once), computed without building the layout; nil when the count overflows an Int.
    public var parameterCount: Int? {
        let (C, I, V, P, L) = (nEmbd, innerSize, vocabSize, nPositions, nLayer)
        // Per block: ln_1 and ln_2 (4C), c_attn (3C² + 3C), attn.c_proj (C² + C), c_fc (CI + I), mlp.c_proj (IC + C).
        let block = checkedSum(checkedProduct(4, C, C), checkedProduct(2, C, I), checkedProduct(9, C), I)
        return checkedSum(checkedProduct(V, C), checkedProduct(P, C), checkedProduct(L, block), checkedProduct(2, C))
    }

    /// Throws unless `copies` buffers the size of the parameters fit in physical memory, naming
    /// `source`; `companions` says what the copies besides the parameters hold.
    public func requireMemory(copies: Int, companions: String, source: String) throws {
        let count = parameterCount.map { "\($0) parameters" } ?? "more parameters than a 64-bit count holds"
        try PhysicalMemory.require(floats: checkedProduct(parameterCount, copies), "\(count), with \(companions)", source: source)
    }
}
