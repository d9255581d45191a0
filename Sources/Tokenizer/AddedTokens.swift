/// A token added on top of the BPE vocabulary, with the options of Hugging Face's `AddedToken`.
/// Text is split around added tokens before pre-tokenization, so BPE never splits them.
public struct AddedToken: Hashable, Sendable {
    public var content: String
    /// Special tokens are left out by `decode(_:skipSpecialTokens: true)`.
    public var special: Bool
    /// Whether the token swallows the whitespace on its left.
    public var lstrip: Bool
    /// Whether the token swallows the whitespace on its right.
    public var rstrip: Bool
    /// Whether the token only matches where no word character (`\w`) touches it.
    public var singleWord: Bool
    /// Whether the token matches normalized text. GPT-2 has no normalizer, but Hugging Face still
    /// looks for unnormalized tokens first and for normalized ones in the text between them.
    public var normalized: Bool

    /// `normalized` defaults to `!special`, as in Hugging Face.
    public init(_ content: String, special: Bool = false, lstrip: Bool = false, rstrip: Bool = false,
                singleWord: Bool = false, normalized: Bool? = nil) {
        self.content = content
        self.special = special
        self.lstrip = lstrip
        self.rstrip = rstrip
        self.singleWord = singleWord
        self.normalized = normalized ?? !special
    }
}

/// A part of the input: text to pre-tokenize, or an added token.
enum TextSegment {
    case text(Range<Int>)
    case addedToken(id: Int)
}

/// The added tokens by id and content, and the splitter that finds them in text.
struct AddedVocabulary {
    private(set) var tokensByID: [Int: AddedToken] = [:]
    private(set) var idsByContent: [String: Int] = [:]
    private(set) var splitter = AddedTokenSplitter(tokens: [])

    /// Adds or updates a token. Once special, a token stays special, as in Hugging Face.
    mutating func register(_ token: AddedToken, id: Int) {
        var token = token
        token.special = token.special || tokensByID[id]?.special == true
        tokensByID[id] = token
        idsByContent[token.content] = id
    }

    /// Must follow a batch of `register` calls before text is split.
    mutating func rebuildSplitter() {
        splitter = AddedTokenSplitter(tokens: tokensByID.map { (token: $0.value, id: $0.key) })
    }
}

/// Splits text around added tokens like Hugging Face: first around unnormalized tokens, then each
/// stretch of text between them around normalized ones. Immutable, and a class so that encoding
/// can hold on to it without copying its tables.
final class AddedTokenSplitter {
    private let unnormalizedMatcher: AddedTokenMatcher
    private let normalizedMatcher: AddedTokenMatcher

    init(tokens: [(token: AddedToken, id: Int)]) {
        unnormalizedMatcher = AddedTokenMatcher(tokens: tokens.filter { !$0.token.normalized })
        normalizedMatcher = AddedTokenMatcher(tokens: tokens.filter { $0.token.normalized })
    }

    func forEachSegment(of text: UnsafeBufferPointer<UInt8>, classes: ScalarClassLookup,
                        _ body: (TextSegment) -> Void) {
        unnormalizedMatcher.split(text, range: 0..<text.count, classes: classes) { segment in
            if case .text(let range) = segment {
                normalizedMatcher.split(text, range: range, classes: classes, body)
            } else {
                body(segment)
            }
        }
    }
}

/// Finds added tokens in text the way Hugging Face's Aho-Corasick matcher does (leftmost match,
/// longest at that position, scanning on after each match), then applies the tokens' options
/// exactly as `AddedVocabulary::find_matches`.
struct AddedTokenMatcher {
    private struct Candidate {
        let bytes: [UInt8]
        let id: Int
        let token: AddedToken
    }

    /// Candidates by first byte, longest first.
    private let candidatesByFirstByte: [[Candidate]]
    /// Whether any candidate starts with the byte; checked first, as most bytes start none.
    private let startsCandidate: [Bool]
    private let isEmpty: Bool

    init(tokens: [(token: AddedToken, id: Int)]) {
        var candidates = [[Candidate]](repeating: [], count: 256)
        for (token, id) in tokens {
            let bytes = Array(token.content.utf8)
            candidates[Int(bytes[0])].append(Candidate(bytes: bytes, id: id, token: token))
        }
        candidatesByFirstByte = candidates.map { $0.sorted { $0.bytes.count > $1.bytes.count } }
        startsCandidate = candidates.map { !$0.isEmpty }
        isEmpty = tokens.isEmpty
    }

    /// Calls `body` with the segments of `text[range]`, in order.
    func split(_ text: UnsafeBufferPointer<UInt8>, range: Range<Int>, classes: ScalarClassLookup,
               _ body: (TextSegment) -> Void) {
        guard !isEmpty else {
            if !range.isEmpty { body(.text(range)) }
            return
        }
        var textStart = range.lowerBound
        var cursor = range.lowerBound
        while cursor < range.upperBound {
            guard startsCandidate[Int(text[cursor])],
                  let candidate = longestMatch(in: text, at: cursor, end: range.upperBound) else {
                cursor += 1
                continue
            }
            var start = cursor
            var stop = cursor + candidate.bytes.count
            cursor = stop
            let token = candidate.token
            if token.singleWord {
                let wordBefore = start > range.lowerBound && isWordCharacter(text, endingAt: start)
                let wordAfter = stop < range.upperBound && isWordCharacter(text, startingAt: stop)
                if wordBefore || wordAfter { continue }
            }
            if token.lstrip {
                // Whitespace that an earlier match already took stays with it.
                start = max(startOfWhitespace(text, endingAt: start, lowerBound: range.lowerBound, classes), textStart)
            }
            if token.rstrip {
                stop = endOfWhitespace(text, startingAt: stop, upperBound: range.upperBound, classes)
            }
            if textStart < start {
                body(.text(textStart..<start))
            }
            body(.addedToken(id: candidate.id))
            textStart = stop
        }
        if textStart < range.upperBound {
            body(.text(textStart..<range.upperBound))
        }
    }

    private func longestMatch(in text: UnsafeBufferPointer<UInt8>, at start: Int, end: Int) -> Candidate? {
        candidatesByFirstByte[Int(text[start])].first { candidate in
            start + candidate.bytes.count <= end
                && candidate.bytes.withUnsafeBufferPointer { bytes in
                    bytes.indices.allSatisfy { bytes[$0] == text[start + $0] }
                }
        }
    }

    /// Start of the whitespace run ending at `end` (Rust regex `\s`, the same set as the
    /// pre-tokenizer's).
    private func startOfWhitespace(_ text: UnsafeBufferPointer<UInt8>, endingAt end: Int, lowerBound: Int,
                                   _ classes: ScalarClassLookup) -> Int {
        var start = end
        while start > lowerBound {
            let previous = text.scalarStart(before: start)
            guard classes.scalarClass(of: text.scalar(at: previous).value) == .whitespace else { break }
            start = previous
        }
        return start
    }

    private func endOfWhitespace(_ text: UnsafeBufferPointer<UInt8>, startingAt start: Int, upperBound: Int,
                                 _ classes: ScalarClassLookup) -> Int {
        var end = start
        while end < upperBound {
            let (value, length) = text.scalar(at: end)
            guard classes.scalarClass(of: value) == .whitespace else { break }
            end += length
        }
        return end
    }

    private func isWordCharacter(_ text: UnsafeBufferPointer<UInt8>, endingAt end: Int) -> Bool {
        WordCharacters.contains(text.scalar(at: text.scalarStart(before: end)).value)
    }

    private func isWordCharacter(_ text: UnsafeBufferPointer<UInt8>, startingAt start: Int) -> Bool {
        WordCharacters.contains(text.scalar(at: start).value)
    }
}
