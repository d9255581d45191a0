/// JSON written the way Python's `json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)`
/// writes it, so that saved configuration files read like the ones transformers writes.
enum JSONText {
    case string(String)
    case integer(Int)
    case bool(Bool)
    case null
    case object([String: JSONText])

    /// The indented document, ending with a newline.
    var document: String {
        var text = ""
        write(to: &text, depth: 0)
        return text + "\n"
    }

    private func write(to text: inout String, depth: Int) {
        switch self {
        case .string(let string):
            text += Self.quoted(string)
        case .integer(let integer):
            text += String(integer)
        case .bool(let bool):
            text += bool ? "true" : "false"
        case .null:
            text += "null"
        case .object(let members):
            guard !members.isEmpty else {
                text += "{}"
                return
            }
            text += "{\n"
            // Python sorts keys by code point, which is UTF-8 byte order.
            let keys = members.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            for (index, key) in keys.enumerated() {
                text += String(repeating: "  ", count: depth + 1) + Self.quoted(key) + ": "
                members[key]!.write(to: &text, depth: depth + 1)
                text += index + 1 < keys.count ? ",\n" : "\n"
            }
            text += String(repeating: "  ", count: depth) + "}"
        }
    }

    /// A JSON string literal escaping only what JSON requires, as both Python (with
    /// `ensure_ascii=False`) and Rust's serde_json do.
    static func quoted(_ string: String) -> String {
        var quoted = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case "\n": quoted += "\\n"
            case "\r": quoted += "\\r"
            case "\t": quoted += "\\t"
            case "\u{08}": quoted += "\\b"
            case "\u{0C}": quoted += "\\f"
            case ..<" ":
                let hex = String(scalar.value, radix: 16)
                quoted += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                quoted.unicodeScalars.append(scalar)
            }
        }
        return quoted + "\""
    }
}
