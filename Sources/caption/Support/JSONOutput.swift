import CaptionSupport
import Foundation

/// The CLI's one JSON writer for what it prints on stdout (one compact object per line, keys sorted, slashes
/// unescaped) and for the small JSON files it writes itself (pretty-printed). The contract's captioning records
/// (`caption --format json`, `caption batch`, `caption metrics`) come ready-made from the library.
enum JSONOutput {
    /// One line of JSON text. Non-finite numbers, which JSON cannot hold, become strings ("nan", "inf") rather
    /// than a failure; use `JSONNumber` where null is wanted.
    static func line<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try encoder([.sortedKeys, .withoutEscapingSlashes]).encode(value), as: UTF8.self)
    }

    /// Prints `value` as one line on stdout.
    static func print<T: Encodable>(_ value: T) throws {
        Swift.print(try line(value))
    }

    /// Writes `value` pretty-printed (keys sorted) to `path`, atomically.
    static func write<T: Encodable>(_ value: T, to path: String) throws {
        do {
            let data = try encoder([.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]).encode(value)
            try (data + Data("\n".utf8)).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw CaptionError(file: path, "cannot write file")
        }
    }

    private static func encoder(_ formatting: JSONEncoder.OutputFormatting) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = formatting
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return encoder
    }
}

/// A number field that is `null` when absent or not finite (where an encoded struct would otherwise drop the key).
struct JSONNumber: Encodable {
    let value: Double?

    init(_ value: Double?) { self.value = value.flatMap { $0.isFinite ? $0 : nil } }
    init(_ value: Int?) { self.value = value.map(Double.init) }

    func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        if let value { try container.encode(value) } else { try container.encodeNil() }
    }
}
