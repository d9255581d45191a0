/// Why a tokenizer could not be loaded, built, saved or used. Each description is one line that
/// names the file (and line) at fault. A `source` is a file path, or "vocabulary" for a tokenizer
/// built in memory; a `location` is a source plus the line or entry, such as
/// "/models/gpt2/merges.txt line 7" or "merges[6]".
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    case missingFile(path: String)
    case missingDirectory(path: String)
    case unreadableFile(path: String, reason: String)
    case malformedJSON(path: String, reason: String)
    /// A merges line that is not two tokens separated by one space.
    case malformedMerge(location: String, text: String)
    case unknownMergeToken(location: String, token: String)
    case invalidVocabulary(source: String, reason: String)
    case invalidAddedToken(source: String, reason: String)
    /// A valid file asking for something this GPT-2 tokenizer does not do.
    case unsupported(source: String, reason: String)
    case unknownTokenID(Int)
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .missingFile(let path):
            return "missing file \(path)"
        case .missingDirectory(let path):
            return "missing directory \(path)"
        case .unreadableFile(let path, let reason):
            return "cannot read \(path): \(reason)"
        case .malformedJSON(let path, let reason):
            return "malformed JSON in \(path): \(reason)"
        case .malformedMerge(let location, let text):
            return "\(location): expected two tokens separated by one space, found \"\(text)\""
        case .unknownMergeToken(let location, let token):
            return "\(location): token \"\(token)\" is not in the vocabulary"
        case .invalidVocabulary(let source, let reason):
            return "invalid vocabulary in \(source): \(reason)"
        case .invalidAddedToken(let source, let reason):
            return "invalid added token in \(source): \(reason)"
        case .unsupported(let source, let reason):
            return "unsupported tokenizer in \(source): \(reason)"
        case .unknownTokenID(let id):
            return "unknown token id \(id)"
        case .writeFailed(let path, let reason):
            return "cannot write \(path): \(reason)"
        }
    }
}
