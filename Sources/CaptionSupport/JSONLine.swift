import Foundation

/// Minimal JSON text building with a fixed key order (the contract lists keys in a reading order).
public enum JSONLine {
    /// `{"k": v, ...}` in the order given; values are JSON texts.
    public static func object(_ fields: [(String, String)]) -> String {
        "{" + fields.map { string($0.0) + ": " + $0.1 }.joined(separator: ", ") + "}"
    }

    /// `[a, b, ...]` of JSON texts.
    public static func array(_ items: [String]) -> String { "[" + items.joined(separator: ", ") + "]" }

    /// A JSON string literal, escaped as serde_json does (quote, backslash and control characters only), so
    /// safetensors headers match the reference writer byte for byte.
    public static func string(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// Shortest round-trip decimal of a Float; non-finite values (not JSON) become null.
    public static func number(_ x: Float) -> String { x.isFinite ? "\(x)" : "null" }

    /// Shortest round-trip decimal of a Double; non-finite values (not JSON) become null.
    public static func number(_ x: Double) -> String { x.isFinite ? "\(x)" : "null" }
}
