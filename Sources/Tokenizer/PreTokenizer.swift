/// Splits UTF-8 text into the pieces that GPT-2's pre-tokenizer regex
///
///     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
///
/// finds, scanning bytes by hand instead of running a regex engine. The alternatives are tried in
/// order at each position, so:
/// - an apostrophe followed by a lowercase contraction suffix is a piece of its own, even inside a
///   word ("'sam" is "'s" + "am"; "'S" is not a contraction);
/// - one optional U+0020 space (no other whitespace) joins the run of letters, numbers or other
///   characters that follows it;
/// - a whitespace run followed by more text gives up its last character, which then starts the next
///   piece (a space joins the following word; any other whitespace stands alone), while a run at
///   the end of the text is one piece.
/// The input must be valid UTF-8 (it comes from a Swift String).
struct PreTokenScanner {
    private let text: UnsafeBufferPointer<UInt8>
    private let classes: ScalarClassLookup
    private var position = 0

    init(text: UnsafeBufferPointer<UInt8>, classes: ScalarClassLookup) {
        self.text = text
        self.classes = classes
    }

    /// The byte range of the next piece, or nil at the end of the text.
    mutating func next() -> Range<Int>? {
        let start = position
        guard start < text.count else { return nil }
        let first = text[start]
        if first == UInt8(ascii: "'"), let length = contractionLength(at: start) {
            position = start + length
            return start..<position
        }
        var (runClass, length) = scalar(at: start)
        var runStart = start
        if first == UInt8(ascii: " "), start + 1 < text.count {
            let (nextClass, nextLength) = scalar(at: start + 1)
            if nextClass != .whitespace {
                (runClass, length, runStart) = (nextClass, nextLength, start + 1)
            }
        }
        if runClass != .whitespace {
            position = endOfRun(of: runClass, from: runStart + length)
            return start..<position
        }
        var lastStart = start
        var end = start + length
        while end < text.count {
            let (nextClass, nextLength) = scalar(at: end)
            guard nextClass == .whitespace else { break }
            lastStart = end
            end += nextLength
        }
        // `\s+(?!\S)` backs off one character when text follows; a single character is `\s+`.
        position = end < text.count && lastStart > start ? lastStart : end
        return start..<position
    }

    /// Length of `'s|'t|'re|'ve|'m|'ll|'d` at `start`, which holds an apostrophe.
    private func contractionLength(at start: Int) -> Int? {
        guard start + 1 < text.count else { return nil }
        switch text[start + 1] {
        case UInt8(ascii: "s"), UInt8(ascii: "t"), UInt8(ascii: "m"), UInt8(ascii: "d"):
            return 2
        case UInt8(ascii: "r"), UInt8(ascii: "v"):
            return start + 2 < text.count && text[start + 2] == UInt8(ascii: "e") ? 3 : nil
        case UInt8(ascii: "l"):
            return start + 2 < text.count && text[start + 2] == UInt8(ascii: "l") ? 3 : nil
        default:
            return nil
        }
    }

    private func endOfRun(of runClass: ScalarClass, from start: Int) -> Int {
        var end = start
        while end < text.count {
            let (nextClass, nextLength) = scalar(at: end)
            guard nextClass == runClass else { break }
            end += nextLength
        }
        return end
    }

    /// The class and UTF-8 length of the scalar starting at `index`.
    @inline(__always)
    private func scalar(at index: Int) -> (ScalarClass, Int) {
        let (value, length) = text.scalar(at: index)
        return (classes.scalarClass(of: value), length)
    }
}
