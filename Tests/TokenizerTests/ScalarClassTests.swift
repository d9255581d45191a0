import Testing
@testable import Tokenizer

@Suite struct ScalarClassTests {
    /// The generated table comes from Hugging Face's regex engine; for every scalar that both it
    /// and Swift's Unicode data know (assigned before Unicode 16), it must agree with Swift's
    /// general categories and White_Space property.
    @Test func tableAgreesWithSwiftUnicodeDataForOlderScalars() {
        ScalarClassTable.shared.withLookup { classes in
            var disagreements: [String] = []
            for value in UInt32(0)...0x10FFFF {
                guard let scalar = Unicode.Scalar(value), let age = scalar.properties.age, age.major < 16 else {
                    continue
                }
                let expected: ScalarClass
                switch scalar.properties.generalCategory {
                case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
                    expected = .letter
                case .decimalNumber, .letterNumber, .otherNumber:
                    expected = .number
                default:
                    expected = scalar.properties.isWhitespace ? .whitespace : .other
                }
                if classes.scalarClass(of: value) != expected {
                    disagreements.append(String(value, radix: 16))
                }
            }
            #expect(disagreements.isEmpty)
        }
    }
}

extension ScalarClassTests {
    @Test func wordCharactersMatchRustRegexWordClass() {
        for scalar: Unicode.Scalar in ["a", "Z", "é", "_", "5", "\u{0301}", "\u{200D}", "中", "\u{1C89}"] {
            #expect(WordCharacters.contains(scalar.value), "\(scalar.value)")
        }
        // "½" is a number but not a decimal digit; U+16EA4 is newer than the reference's Unicode.
        for scalar: Unicode.Scalar in [" ", "-", "!", "½", "\u{16EA4}", "\u{10FFFF}", "\0"] {
            #expect(!WordCharacters.contains(scalar.value), "\(scalar.value)")
        }
    }
}
