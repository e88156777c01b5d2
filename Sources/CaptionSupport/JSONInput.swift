import Foundation

/// The package's JSON reader: the whole document is parsed before anything is used, and every accessor throws a `CaptionError` naming the file and the entry (`images[3].file_name`).
public struct JSONInput: Sendable {
    /// The file being read, as the user named it.
    public let file: String

    /// A reader whose errors name `file` (for text that did not come from `load`).
    public init(file: String) { self.file = file }

    /// Parses `file`; a syntax error is reported with its line and column.
    public static func load(_ file: String) throws -> (JSONInput, Any) {
        let input = JSONInput(file: file)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory) else {
            throw CaptionError(file: file, "no such file")
        }
        guard !isDirectory.boolValue else { throw CaptionError(file: file, "is a directory, expected a JSON file") }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw CaptionError(file: file, "cannot read file")
        }
        return (input, try input.parse(data))
    }

    /// Parses JSON text read from `file`; a syntax error names its line and column.
    public func parse(_ data: Data) throws -> Any {
        do {
            return try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw CaptionError(file: file, "malformed JSON: \(Self.describe(error, in: data))")
        }
    }

    /// Foundation reports "Invalid value around character 1234."; turn the offset into line:column.
    static func describe(_ error: Error, in data: Data) -> String {
        let detail = ((error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String)
            ?? (error as NSError).localizedDescription
        let pattern = "around character "
        guard let range = detail.range(of: pattern) else {
            return detail.hasSuffix(".") ? String(detail.dropLast()).lowercasedFirst : detail.lowercasedFirst
        }
        let digits = detail[range.upperBound...].prefix(while: \.isNumber)
        guard let offset = Int(digits) else { return detail }
        var line = 1, column = 1
        for byte in data.prefix(offset) {
            if byte == UInt8(ascii: "\n") { line += 1; column = 1 } else if byte & 0xC0 != 0x80 { column += 1 }
        }
        let what = detail[..<range.lowerBound].trimmingCharacters(in: .whitespaces)
        return "\(what.lowercasedFirst) at line \(line), column \(column)"
    }

    // MARK: Typed access

    /// `value` as a JSON object, or an error naming `path`.
    public func object(_ value: Any?, _ path: String) throws -> [String: Any] {
        guard let value else { throw missing(path) }
        guard let object = value as? [String: Any] else { throw wrongType(path, "an object", value) }
        return object
    }

    /// `value` as a JSON array, or an error naming `path`.
    public func array(_ value: Any?, _ path: String) throws -> [Any] {
        guard let value else { throw missing(path) }
        guard let array = value as? [Any] else { throw wrongType(path, "an array", value) }
        return array
    }

    /// `value` as a string, or an error naming `path`.
    public func string(_ value: Any?, _ path: String) throws -> String {
        guard let value else { throw missing(path) }
        guard let string = value as? String else { throw wrongType(path, "a string", value) }
        return string
    }

    /// An integral number (COCO ids); booleans and fractions are rejected.
    public func int(_ value: Any?, _ path: String) throws -> Int {
        guard let value else { throw missing(path) }
        if let number = value as? NSNumber, !Self.isBool(number) {
            let double = number.doubleValue
            if double.rounded() == double, abs(double) < 9.0e15 { return number.intValue }
        }
        throw wrongType(path, "an integer", value)
    }

    /// Any number (boxes).
    public func double(_ value: Any?, _ path: String) throws -> Double {
        guard let value else { throw missing(path) }
        guard let number = value as? NSNumber, !Self.isBool(number), number.doubleValue.isFinite else {
            throw wrongType(path, "a number", value)
        }
        return number.doubleValue
    }

    /// An error about this file.
    public func error(_ problem: String) -> CaptionError { CaptionError(file: file, problem) }

    /// "`path`: missing".
    public func missing(_ path: String) -> CaptionError { error("\(path): missing") }

    /// "`path`: expected `expected`, found <the JSON type of value>".
    public func wrongType(_ path: String, _ expected: String, _ value: Any) -> CaptionError {
        error("\(path): expected \(expected), found \(Self.typeName(value))")
    }

    /// JSON `true`/`false` arrive as NSNumbers of C type `char`; numbers never do.
    public static func isBool(_ number: NSNumber) -> Bool { String(cString: number.objCType) == "c" }

    /// The JSON type of `value` as error messages name it, e.g. `"a string"`, `"null"`.
    public static func typeName(_ value: Any) -> String {
        switch value {
        case is String: return "a string"
        case let number as NSNumber: return isBool(number) ? "a boolean" : "a number"
        case is [Any]: return "an array"
        case is [String: Any]: return "an object"
        case is NSNull: return "null"
        default: return "\(type(of: value))"
        }
    }
}

private extension StringProtocol {
    var lowercasedFirst: String { prefix(1).lowercased() + dropFirst() }
}
