import Foundation
import CaptionSupport
import Captioning

/// The output of one file in a batch run: its caption, or why it has none.
public enum BatchRecord: Sendable {
    case caption(image: String, CaptionResult)
    case failure(image: String, error: String)

    /// The file the record is about, as the walk named it.
    public var image: String {
        switch self {
        case .caption(let image, _), .failure(let image, _): return image
        }
    }

    /// The record as one line of `format`, newline included (a record is always written with one `write`).
    public func line(_ format: BatchFormat) -> String {
        switch (format, self) {
        case (.jsonl, .caption(let image, let r)):
            return r.jsonLine(image: image) + "\n"
        case (.jsonl, .failure(let image, let error)):
            return JSONLine.object([("image", JSONLine.string(image)), ("error", JSONLine.string(error))]) + "\n"
        case (.csv, .caption(let image, let r)):
            return CSV.line([image, r.caption, JSONLine.number(r.logProb), ""])
        case (.csv, .failure(let image, let error)):
            return CSV.line([image, "", "", error])
        }
    }
}

/// `caption batch --format`: JSON lines with the fields of `caption --format json`, or CSV with the columns
/// `BatchFormat.csvHeader`.
public enum BatchFormat: String, CaseIterable, Sendable {
    case jsonl, csv

    /// The first line of a CSV output.
    public static let csvColumns = ["image", "caption", "log_prob", "error"]
}

/// RFC 4180 CSV: fields with a comma, quote, CR or LF are quoted, quotes doubled; records end in LF.
enum CSV {
    static func line(_ fields: [String]) -> String {
        fields.map(field).joined(separator: ",") + "\n"
    }

    static func field(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// The complete records of `bytes` and where the last one ends: a record is complete once its LF (outside
    /// quotes) is there, so a torn tail (a killed writer's half record) is left out and `end` is where to cut.
    static func records(_ bytes: [UInt8]) -> (records: [[String]], end: Int) {
        let (records, ends) = scan(bytes)
        return (records, ends.last ?? 0)
    }

    /// The complete records of `bytes` and where each one ends (the offset just after its LF).
    static func scan(_ bytes: [UInt8]) -> (records: [[String]], ends: [Int]) {
        var records: [[String]] = [], fields: [String] = [], field: [UInt8] = [], ends: [Int] = []
        var quoted = false, i = 0
        while i < bytes.count {
            let b = bytes[i]
            if quoted {
                if b == UInt8(ascii: "\"") {
                    if i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "\"") { field.append(b); i += 1 } else { quoted = false }
                } else {
                    field.append(b)
                }
            } else if b == UInt8(ascii: "\"") {
                quoted = true
            } else if b == UInt8(ascii: ",") {
                fields.append(String(decoding: field, as: UTF8.self)); field = []
            } else if b == UInt8(ascii: "\n") {
                fields.append(String(decoding: field, as: UTF8.self)); field = []
                if fields.last?.hasSuffix("\r") == true { fields[fields.count - 1].removeLast() }
                records.append(fields); fields = []
                ends.append(i + 1)
            } else {
                field.append(b)
            }
            i += 1
        }
        return (records, ends)
    }
}
