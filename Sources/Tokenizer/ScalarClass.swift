/// The character classes that GPT-2's pre-tokenizer regex distinguishes: `\p{L}`, `\p{N}`, `\s`
/// and everything else, which the regex spells `[^\s\p{L}\p{N}]`. A struct rather than an enum
/// so that reading one from the lookup table is a plain byte load, not a conversion.
struct ScalarClass: Equatable {
    let rawValue: UInt8

    static let other = ScalarClass(rawValue: 0)
    static let letter = ScalarClass(rawValue: 1)
    static let number = ScalarClass(rawValue: 2)
    static let whitespace = ScalarClass(rawValue: 3)
}

/// Constant-time class lookup for every Unicode scalar: a two-stage table of 256-scalar blocks in
/// which identical blocks are stored once (about 43 KB instead of 1.1 MB), built from the ranges in
/// ScalarClassRanges.swift.
struct ScalarClassTable: Sendable {
    static let shared = ScalarClassTable()

    /// For each block of 256 scalars, the index of its class block in `blockClasses`. The first
    /// block (U+0000 to U+00FF) is stored first, so ASCII classes are `blockClasses[0..<128]`.
    private let blockIndex: [UInt16]
    /// Raw `ScalarClass` values, 256 per distinct block.
    private let blockClasses: [UInt8]

    private init() {
        let scalarCount = 0x110000
        var classes = [UInt8](repeating: ScalarClass.other.rawValue, count: scalarCount)
        for (ranges, scalarClass) in [(ScalarClassRanges.letterRanges, ScalarClass.letter),
                                      (ScalarClassRanges.numberRanges, .number),
                                      (ScalarClassRanges.whitespaceRanges, .whitespace)] {
            for pair in stride(from: 0, to: ranges.count, by: 2) {
                for scalar in Int(ranges[pair])...Int(ranges[pair + 1]) {
                    classes[scalar] = scalarClass.rawValue
                }
            }
        }
        var blockIndex: [UInt16] = []
        var blockClasses: [UInt8] = []
        var indexOfBlock: [ArraySlice<UInt8>: UInt16] = [:]
        for start in stride(from: 0, to: scalarCount, by: 256) {
            let block = classes[start..<start + 256]
            if let index = indexOfBlock[block] {
                blockIndex.append(index)
            } else {
                let index = UInt16(indexOfBlock.count)
                indexOfBlock[block] = index
                blockIndex.append(index)
                blockClasses += block
            }
        }
        self.blockIndex = blockIndex
        self.blockClasses = blockClasses
    }

    /// Runs `body` with a lookup over this table's storage, for use in hot loops.
    func withLookup<Result>(_ body: (ScalarClassLookup) throws -> Result) rethrows -> Result {
        try blockIndex.withUnsafeBufferPointer { blockIndex in
            try blockClasses.withUnsafeBufferPointer { blockClasses in
                try body(ScalarClassLookup(blockIndex: blockIndex, blockClasses: blockClasses))
            }
        }
    }
}

/// A borrowed view of a `ScalarClassTable`, valid inside `withLookup`.
struct ScalarClassLookup {
    let blockIndex: UnsafeBufferPointer<UInt16>
    let blockClasses: UnsafeBufferPointer<UInt8>

    @inline(__always)
    func scalarClass(of scalar: UInt32) -> ScalarClass {
        if scalar < 0x80 {
            return ScalarClass(rawValue: blockClasses[Int(scalar)])
        }
        let block = Int(blockIndex[Int(scalar &>> 8)])
        return ScalarClass(rawValue: blockClasses[block &<< 8 | Int(scalar & 0xFF)])
    }
}

extension UnsafeBufferPointer<UInt8> {
    /// The scalar value and UTF-8 length of the scalar starting at `index`; the text must be valid
    /// UTF-8.
    @inline(__always)
    func scalar(at index: Int) -> (value: UInt32, length: Int) {
        let lead = UInt32(self[index])
        switch lead {
        case ..<0x80:
            return (lead, 1)
        case ..<0xE0:
            return ((lead & 0x1F) << 6 | UInt32(self[index + 1] & 0x3F), 2)
        case ..<0xF0:
            return ((lead & 0x0F) << 12 | UInt32(self[index + 1] & 0x3F) << 6 | UInt32(self[index + 2] & 0x3F), 3)
        default:
            return ((lead & 0x07) << 18 | UInt32(self[index + 1] & 0x3F) << 12
                        | UInt32(self[index + 2] & 0x3F) << 6 | UInt32(self[index + 3] & 0x3F), 4)
        }
    }

    /// The start of the scalar that ends just before `index`.
    func scalarStart(before index: Int) -> Int {
        var start = index - 1
        while start > 0, self[start] & 0xC0 == 0x80 {
            start -= 1
        }
        return start
    }
}

/// The word characters (`\w` of Rust's regex crate) that decide whether a single-word added token
/// matches. Only consulted at such a token's matches, so a binary search over the ranges is enough.
enum WordCharacters {
    static func contains(_ scalar: UInt32) -> Bool {
        let ranges = ScalarClassRanges.wordRanges
        // Find the last range starting at or before the scalar.
        var low = 0
        var high = ranges.count / 2
        while low < high {
            let middle = (low + high) / 2
            if ranges[2 * middle] <= scalar {
                low = middle + 1
            } else {
                high = middle
            }
        }
        return low > 0 && scalar <= ranges[2 * (low - 1) + 1]
    }
}
