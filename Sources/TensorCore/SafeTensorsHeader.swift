import CaptionSupport
import Foundation

// safetensors (https://github.com/huggingface/safetensors) layout:
//   [u64 little-endian N][N bytes of UTF-8 JSON header][data section]
// The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
// relative to the start of the data section), plus an optional "__metadata__" string→string map.
// Validation follows the reference Rust crate: the tensors, sorted by offset, must tile the data
// section exactly (no gaps, no overlaps, nothing left over) and each byte range must equal
// shape × element size.
//
// Tensor data is little-endian; it is read and written with plain loads and stores, so only
// little-endian hosts (x86_64, arm64) are supported.
#if _endian(big)
#error("SafeTensorsReader.swift and SafeTensorsWriter.swift assume a little-endian host")
#endif

/// Element types a safetensors file can hold that this reader understands.
public enum SafeTensorsDType: String, CaseIterable, Sendable {
    case F64, F32, F16, BF16, I64, I32, U8, BOOL

    /// Position in the reference crate's `Dtype` enum (increasing alignment); its writer lays
    /// tensors out in decreasing order of this, so ours does too.
    var referenceRank: Int {
        switch self {
        case .BOOL: return 0
        case .U8: return 4
        case .F16: return 10
        case .BF16: return 11
        case .I32: return 12
        case .F32: return 14
        case .F64: return 15
        case .I64: return 16
        }
    }

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .F64, .I64: return 8
        case .F32, .I32: return 4
        case .F16, .BF16: return 2
        case .U8, .BOOL: return 1
        }
    }
}

/// Header parsing and validation, separate from the mapping so the rules read top to bottom.
enum SafeTensorsHeader {
    struct Parsed {
        var entries: [SafeTensorsFile.Entry]
        var metadata: [String: String]
    }

    static func parse(base: UnsafeRawPointer, fileSize: Int, path: String) throws -> Parsed {
        let headerLength = UInt64(littleEndian: base.loadUnaligned(as: UInt64.self))
        if headerLength == 0 { throw SafeTensorsProblem.emptyHeader(file: path).error }
        if headerLength > SafeTensorsFile.maxHeaderLength {
            throw SafeTensorsProblem.headerTooLarge(file: path, length: headerLength).error
        }
        if headerLength > UInt64(fileSize - 8) {
            throw SafeTensorsProblem.headerBeyondEnd(file: path, length: headerLength, fileSize: fileSize).error
        }
        let n = Int(headerLength)
        let headerBytes = UnsafeRawBufferPointer(start: base + 8, count: n)
        guard String(validating: headerBytes, as: UTF8.self) != nil else {
            throw SafeTensorsProblem.headerNotUTF8(file: path).error
        }
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(headerBytes), options: [])
        } catch {
            var reason = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "parse error"
            reason = reason.replacingOccurrences(of: "\n", with: " ")
            if reason.hasSuffix(".") { reason.removeLast() }
            throw SafeTensorsProblem.headerNotJSON(file: path, reason: reason).error
        }
        guard let object = json as? [String: Any] else { throw SafeTensorsProblem.headerNotObject(file: path).error }
        // JSONSerialization silently keeps one of two equal keys; find duplicates in the raw text.
        // (The reference crate keeps the last tensor of a name, which goes unnoticed when both
        // entries agree; a duplicated name is always a writer bug, so it is rejected here.)
        if let dup = firstDuplicateKey(headerBytes) {
            switch (dup.topLevelKey, dup.depth) {
            case (_, 1): throw SafeTensorsProblem.duplicateName(file: path, name: dup.key).error
            case ("__metadata__", _):
                throw SafeTensorsProblem.invalidMetadata(file: path, reason: "key \"\(dup.key)\" appears more than once").error
            default:
                throw SafeTensorsProblem.invalidEntry(file: path, tensor: dup.topLevelKey,
                                                    reason: "key \"\(dup.key)\" appears more than once").error
            }
        }

        var metadata: [String: String] = [:]
        let dataStart = 8 + n
        let dataSize = fileSize - dataStart
        var entries: [SafeTensorsFile.Entry] = []
        entries.reserveCapacity(object.count)
        for (name, value) in object {
            if name == "__metadata__" {
                if value is NSNull { continue }
                guard let dict = value as? [String: Any] else {
                    throw SafeTensorsProblem.invalidMetadata(file: path, reason: "not a JSON object").error
                }
                for (k, v) in dict {
                    guard let s = v as? String else {
                        throw SafeTensorsProblem.invalidMetadata(file: path, reason: "value of \"\(k)\" is not a string").error
                    }
                    metadata[k] = s
                }
                continue
            }
            entries.append(try parseEntry(name: name, value: value, dataStart: dataStart, path: path))
        }

        // Sort by offsets (then name, so equal empty ranges order deterministically) and require the
        // ranges to tile the data section exactly, as the reference implementation does.
        entries.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var cursor = dataStart
        var previous: String?
        for e in entries {
            if e.end - dataStart > dataSize {
                throw SafeTensorsProblem.offsetsOutOfBounds(file: path, tensor: e.name, end: e.end - dataStart, dataSize: dataSize).error
            }
            if e.begin < cursor, let previous {
                throw SafeTensorsProblem.overlappingTensors(file: path, tensor: e.name, other: previous).error
            }
            if e.begin > cursor {
                throw SafeTensorsProblem.gapBeforeTensor(file: path, tensor: e.name,
                                                       gapBegin: cursor - dataStart, gapEnd: e.begin - dataStart).error
            }
            cursor = e.end
            previous = e.name
        }
        if cursor != fileSize {
            throw SafeTensorsProblem.trailingBytes(file: path, used: cursor - dataStart, dataSize: dataSize).error
        }
        return Parsed(entries: entries, metadata: metadata)
    }

    private static func parseEntry(name: String, value: Any, dataStart: Int, path: String) throws -> SafeTensorsFile.Entry {
        func bad(_ reason: String) -> CaptionError { SafeTensorsProblem.invalidEntry(file: path, tensor: name, reason: reason).error }
        guard let dict = value as? [String: Any] else { throw bad("not a JSON object") }
        guard let dtypeValue = dict["dtype"] else { throw bad("missing \"dtype\"") }
        guard let dtypeName = dtypeValue as? String else { throw bad("\"dtype\" is not a string") }
        guard let shapeValue = dict["shape"] else { throw bad("missing \"shape\"") }
        guard let shapeArray = shapeValue as? [Any] else { throw bad("\"shape\" is not an array") }
        guard let offsetsValue = dict["data_offsets"] else { throw bad("missing \"data_offsets\"") }
        guard let offsetsArray = offsetsValue as? [Any] else { throw bad("\"data_offsets\" is not an array") }
        var shape: [Int] = []
        for v in shapeArray {
            guard let d = nonNegativeInteger(v) else {
                throw bad("shape \(describe(shapeArray)): \(describe(v)) is not a non-negative integer")
            }
            shape.append(d)
        }
        guard offsetsArray.count == 2 else { throw bad("\"data_offsets\" must have 2 entries, has \(offsetsArray.count)") }
        guard let begin = nonNegativeInteger(offsetsArray[0]), let end = nonNegativeInteger(offsetsArray[1]) else {
            throw bad("data_offsets \(describe(offsetsArray)) are not non-negative integers")
        }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            throw SafeTensorsProblem.unknownDType(file: path, tensor: name, dtype: dtypeName).error
        }
        if begin > end { throw SafeTensorsProblem.offsetsReversed(file: path, tensor: name, begin: begin, end: end).error }
        var bytes = dtype.size
        for d in shape {
            let (p, overflow) = bytes.multipliedReportingOverflow(by: d)
            if overflow { throw SafeTensorsProblem.shapeOverflow(file: path, tensor: name, shape: shape).error }
            bytes = p
        }
        if bytes != end - begin {
            throw SafeTensorsProblem.sizeMismatch(file: path, tensor: name, shapeBytes: bytes, offsetBytes: end - begin).error
        }
        // Offsets are < 2^63 here; adding the header size cannot overflow for any real file, but check.
        let (absBegin, o1) = dataStart.addingReportingOverflow(begin)
        let (absEnd, o2) = dataStart.addingReportingOverflow(end)
        if o1 || o2 { throw bad("data_offsets too large") }
        return .init(name: name, dtype: dtype, shape: shape, begin: absBegin, end: absEnd)
    }

    /// An integer literal ≥ 0 that fits in Int; rejects booleans, fractions and exponent forms,
    /// as the reference crate's `usize` fields do.
    private static func nonNegativeInteger(_ v: Any) -> Int? {
        guard let n = v as? NSNumber else { return nil }
        let kind = String(cString: n.objCType)
        // "c" is how Foundation boxes JSON booleans; "d"/"f" are non-integer literals (1.5, 1e3, 2.0).
        if kind == "c" || kind == "d" || kind == "f" { return nil }
        if kind == "Q" { return n.uint64Value <= UInt64(Int.max) ? Int(n.uint64Value) : nil }
        let i = n.int64Value
        return i >= 0 ? Int(i) : nil
    }

    /// A JSON array back as JSON-like text for messages (Foundation would print `true` as `1`).
    private static func describe(_ a: [Any]) -> String {
        "[" + a.map(describe).joined(separator: ", ") + "]"
    }

    private static func describe(_ v: Any) -> String {
        if let s = v as? String { return "\"\(s)\"" }
        if let n = v as? NSNumber, String(cString: n.objCType) == "c" { return n.boolValue ? "true" : "false" }
        if v is NSNull { return "null" }
        if v is [Any] { return "[…]" }
        if v is [String: Any] { return "{…}" }
        return "\(v)"
    }

    /// Scans JSON text that already parsed for an object key that occurs twice in the same object.
    /// Only structure matters here (the text is known to be valid), so a small state machine
    /// suffices. Returns the key, the object's nesting depth (1 = the header object itself) and the
    /// top-level key the object sits under.
    static func firstDuplicateKey(_ bytes: UnsafeRawBufferPointer) -> (key: String, depth: Int, topLevelKey: String)? {
        // One entry per open container: the keys seen so far, or nil for arrays.
        var stack: [Set<String>?] = []
        var expectKey = false
        var topLevelKey = ""
        var i = 0
        let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
        while i < bytes.count {
            let c = bytes[i]
            switch c {
            case quote:
                let start = i + 1
                var j = start
                var escaped = false
                while j < bytes.count, bytes[j] != quote {
                    if bytes[j] == backslash { escaped = true; j += 1 }
                    j += 1
                }
                if expectKey, !stack.isEmpty, stack[stack.count - 1] != nil {
                    let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<min(j, bytes.count)])
                    var key = String(decoding: raw, as: UTF8.self)
                    if escaped {
                        // Let the JSON parser resolve escapes so "a" and "\u0061" compare equal.
                        let quoted = Data([quote]) + Data(raw) + Data([quote])
                        if let decoded = (try? JSONSerialization.jsonObject(with: quoted, options: .fragmentsAllowed)) as? String {
                            key = decoded
                        }
                    }
                    if stack.count == 1 { topLevelKey = key }
                    if stack[stack.count - 1]!.insert(key).inserted == false {
                        return (key, stack.count, topLevelKey)
                    }
                    expectKey = false
                }
                i = j + 1
                continue
            case UInt8(ascii: "{"):
                stack.append([])
                expectKey = true
            case UInt8(ascii: "["):
                stack.append(nil)
                expectKey = false
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                _ = stack.popLast()
                expectKey = false
            case UInt8(ascii: ","):
                expectKey = !stack.isEmpty && stack[stack.count - 1] != nil
            default:
                break
            }
            i += 1
        }
        return nil
    }
}
