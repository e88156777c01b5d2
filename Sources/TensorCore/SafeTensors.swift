import Foundation
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

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
#error("SafeTensors.swift assumes a little-endian host")
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

/// A problem reading or writing a safetensors file. Every message is one line, `"<file>: <problem>"`.
public enum SafeTensorsError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file could not be opened, stat'ed or mapped.
    case cannotOpen(file: String, reason: String)
    /// Fewer than the 8 bytes of the header-length prefix.
    case fileTooSmall(file: String, size: Int)
    /// The header-length prefix is zero.
    case emptyHeader(file: String)
    /// The header-length prefix exceeds the 100 MB limit the reference implementation enforces.
    case headerTooLarge(file: String, length: UInt64)
    /// The header-length prefix points past the end of the file.
    case headerBeyondEnd(file: String, length: UInt64, fileSize: Int)
    /// The header bytes are not valid UTF-8.
    case headerNotUTF8(file: String)
    /// The header is not parseable JSON.
    case headerNotJSON(file: String, reason: String)
    /// The header is JSON but not an object (or does not start with `{`).
    case headerNotObject(file: String)
    /// The same tensor name appears twice in the header.
    case duplicateName(file: String, name: String)
    /// `__metadata__` is not an object of string values.
    case invalidMetadata(file: String, reason: String)
    /// A tensor entry lacks dtype/shape/data_offsets or has values of the wrong type.
    case invalidEntry(file: String, tensor: String, reason: String)
    /// A dtype this reader does not know.
    case unknownDType(file: String, tensor: String, dtype: String)
    /// The element count times the element size overflows.
    case shapeOverflow(file: String, tensor: String, shape: [Int])
    /// data_offsets has begin > end.
    case offsetsReversed(file: String, tensor: String, begin: Int, end: Int)
    /// data_offsets extends past the end of the data section.
    case offsetsOutOfBounds(file: String, tensor: String, end: Int, dataSize: Int)
    /// shape × element size differs from the data_offsets byte range.
    case sizeMismatch(file: String, tensor: String, shapeBytes: Int, offsetBytes: Int)
    /// Two tensors' byte ranges overlap.
    case overlappingTensors(file: String, tensor: String, other: String)
    /// Bytes between two tensors (or before the first) that belong to no tensor.
    case gapBeforeTensor(file: String, tensor: String, gapBegin: Int, gapEnd: Int)
    /// The tensors end before the data section does.
    case trailingBytes(file: String, used: Int, dataSize: Int)
    /// No tensor of that name.
    case noSuchTensor(file: String, name: String)
    /// An accessor was used on a tensor of another dtype (e.g. `uint8` on F32).
    case wrongDType(file: String, tensor: String, actual: SafeTensorsDType, expected: String)
    /// `SafeTensorsWriter.add` was given inconsistent input (reported when writing).
    case invalidTensor(file: String, tensor: String, reason: String)
    /// The output file could not be written.
    case cannotWrite(file: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotOpen(f, r): return "\(f): cannot open safetensors file: \(r)"
        case let .fileTooSmall(f, n):
            return "\(f): not a safetensors file: \(n) bytes, shorter than the 8-byte header length"
        case let .emptyHeader(f): return "\(f): safetensors header length is zero"
        case let .headerTooLarge(f, n):
            return "\(f): safetensors header length \(n) exceeds the \(SafeTensorsFile.maxHeaderLength)-byte limit"
        case let .headerBeyondEnd(f, n, size):
            return "\(f): safetensors header length \(n) runs past the end of the \(size)-byte file"
        case let .headerNotUTF8(f): return "\(f): safetensors header is not valid UTF-8"
        case let .headerNotJSON(f, r): return "\(f): safetensors header is not valid JSON: \(r)"
        case let .headerNotObject(f): return "\(f): safetensors header is not a JSON object"
        case let .duplicateName(f, n): return "\(f): tensor name \"\(n)\" appears more than once in the header"
        case let .invalidMetadata(f, r): return "\(f): invalid __metadata__: \(r)"
        case let .invalidEntry(f, t, r): return "\(f): invalid header entry for tensor \"\(t)\": \(r)"
        case let .unknownDType(f, t, d): return "\(f): tensor \"\(t)\" has unsupported dtype \"\(d)\""
        case let .shapeOverflow(f, t, s): return "\(f): tensor \"\(t)\" shape \(s) is too large"
        case let .offsetsReversed(f, t, b, e):
            return "\(f): tensor \"\(t)\" has data_offsets [\(b), \(e)] with begin after end"
        case let .offsetsOutOfBounds(f, t, e, size):
            return "\(f): tensor \"\(t)\" data ends at byte \(e), past the \(size)-byte data section"
        case let .sizeMismatch(f, t, s, o):
            return "\(f): tensor \"\(t)\" shape needs \(s) bytes but data_offsets span \(o) bytes"
        case let .overlappingTensors(f, t, o): return "\(f): tensors \"\(o)\" and \"\(t)\" overlap in the data section"
        case let .gapBeforeTensor(f, t, b, e):
            return "\(f): bytes \(b)..<\(e) of the data section before tensor \"\(t)\" belong to no tensor"
        case let .trailingBytes(f, u, size):
            return "\(f): tensors cover \(u) bytes but the data section has \(size) (trailing bytes)"
        case let .noSuchTensor(f, n): return "\(f): no tensor named \"\(n)\""
        case let .wrongDType(f, t, a, e): return "\(f): tensor \"\(t)\" is \(a.rawValue), not \(e)"
        case let .invalidTensor(f, t, r): return "\(f): cannot write tensor \"\(t)\": \(r)"
        case let .cannotWrite(f, r): return "\(f): cannot write safetensors file: \(r)"
        }
    }
}

/// A read-only memory mapping of a whole file; unmapped when the last reference goes away.
final class SafeTensorsMapping: @unchecked Sendable {
    let base: UnsafeRawPointer
    let size: Int

    init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw SafeTensorsError.cannotOpen(file: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw SafeTensorsError.cannotOpen(file: path, reason: String(cString: strerror(errno))) }
        if (st.st_mode & S_IFMT) != S_IFREG { throw SafeTensorsError.cannotOpen(file: path, reason: "not a regular file") }
        let size = Int(st.st_size)
        // mmap rejects zero-length mappings; such a file fails the length check anyway.
        if size < 8 { throw SafeTensorsError.fileTooSmall(file: path, size: size) }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw SafeTensorsError.cannotOpen(file: path, reason: "mmap failed: " + String(cString: strerror(errno)))
        }
        base = UnsafeRawPointer(p)
        self.size = size
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), size) }
}

/// A safetensors file opened for reading, memory-mapped and validated up front.
///
/// The mapping stays alive as long as any copy of this value does; `bytes(_:)` views point into it.
/// Reading a tensor copies its elements out into a `Tensor` (converted to Float32).
public struct SafeTensorsFile: @unchecked Sendable {
    /// Header lengths above this are rejected (the reference implementation's limit).
    public static let maxHeaderLength: UInt64 = 100_000_000

    struct Entry {
        let name: String
        let dtype: SafeTensorsDType
        let shape: [Int]
        let begin: Int  // absolute byte offsets in the file
        let end: Int
    }

    /// The path the file was opened from (used in error messages).
    public let path: String
    private let mapping: SafeTensorsMapping
    private let entries: [Entry]
    private let index: [String: Int]

    /// Tensor names in file order (ascending data offsets).
    public var names: [String] { entries.map(\.name) }
    /// The `__metadata__` string map (empty when absent).
    public let metadata: [String: String]

    /// Maps and validates the file at `path`; throws `SafeTensorsError` naming the file and the problem.
    public init(path: String) throws {
        self.path = path
        let mapping = try SafeTensorsMapping(path: path)
        self.mapping = mapping
        let header = try SafeTensorsHeader.parse(base: mapping.base, fileSize: mapping.size, path: path)
        self.entries = header.entries
        self.metadata = header.metadata
        var index = [String: Int](minimumCapacity: header.entries.count)
        for (i, e) in header.entries.enumerated() { index[e.name] = i }
        self.index = index
    }

    private func entry(_ name: String) throws -> Entry {
        guard let i = index[name] else { throw SafeTensorsError.noSuchTensor(file: path, name: name) }
        return entries[i]
    }

    /// dtype and shape of a tensor, or nil when there is none of that name.
    public func info(_ name: String) -> (dtype: SafeTensorsDType, shape: [Int])? {
        guard let i = index[name] else { return nil }
        return (entries[i].dtype, entries[i].shape)
    }

    /// The tensor's raw little-endian bytes, valid while this value (or a copy) lives. Not aligned.
    public func bytes(_ name: String) throws -> UnsafeRawBufferPointer {
        let e = try entry(name)
        return UnsafeRawBufferPointer(start: mapping.base + e.begin, count: e.end - e.begin)
    }

    /// The tensor converted to Float32 (F16/BF16 exactly; integers and F64 rounded to nearest).
    public func tensor(_ name: String) throws -> Tensor {
        let e = try entry(name)
        let src = mapping.base + e.begin
        let n = (e.end - e.begin) / e.dtype.size
        return Tensor(shape: e.shape) { out in
            guard let dst = out.baseAddress, n > 0 else { return }
            switch e.dtype {
            case .F32:
                // Data is little-endian like the host, so this is a straight copy; memcpy needs no alignment.
                memcpy(dst, src, n * 4)
            case .F16:
                for i in 0..<n {
                    dst[i] = Half.toFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                }
            case .BF16:
                for i in 0..<n {
                    let bits = UInt32(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16
                    dst[i] = Float(bitPattern: bits)
                }
            case .F64:
                for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
            case .I64:
                for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)) }
            case .I32:
                for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)) }
            case .U8, .BOOL:
                for i in 0..<n { dst[i] = Float(src.load(fromByteOffset: i, as: UInt8.self)) }
            }
        }
    }

    /// The elements of a U8 (or BOOL, as 0/1) tensor.
    public func uint8(_ name: String) throws -> [UInt8] {
        let e = try entry(name)
        guard e.dtype == .U8 || e.dtype == .BOOL else {
            throw SafeTensorsError.wrongDType(file: path, tensor: name, actual: e.dtype, expected: "U8")
        }
        return Array(UnsafeRawBufferPointer(start: mapping.base + e.begin, count: e.end - e.begin))
    }

    /// The elements of an I64 tensor (I32 and U8 tensors are widened).
    public func int64(_ name: String) throws -> [Int64] {
        let e = try entry(name)
        let src = mapping.base + e.begin
        let n = (e.end - e.begin) / e.dtype.size
        switch e.dtype {
        case .I64: return (0..<n).map { src.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self) }
        case .I32: return (0..<n).map { Int64(src.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
        case .U8: return (0..<n).map { Int64(src.load(fromByteOffset: $0, as: UInt8.self)) }
        default: throw SafeTensorsError.wrongDType(file: path, tensor: name, actual: e.dtype, expected: "an integer type")
        }
    }

    /// The elements of an I32 tensor.
    public func int32(_ name: String) throws -> [Int32] {
        let e = try entry(name)
        guard e.dtype == .I32 else {
            throw SafeTensorsError.wrongDType(file: path, tensor: name, actual: e.dtype, expected: "I32")
        }
        let src = mapping.base + e.begin
        return (0..<(e.end - e.begin) / 4).map { src.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self) }
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
        if headerLength == 0 { throw SafeTensorsError.emptyHeader(file: path) }
        if headerLength > SafeTensorsFile.maxHeaderLength {
            throw SafeTensorsError.headerTooLarge(file: path, length: headerLength)
        }
        if headerLength > UInt64(fileSize - 8) {
            throw SafeTensorsError.headerBeyondEnd(file: path, length: headerLength, fileSize: fileSize)
        }
        let n = Int(headerLength)
        let headerBytes = UnsafeRawBufferPointer(start: base + 8, count: n)
        guard String(validating: headerBytes, as: UTF8.self) != nil else {
            throw SafeTensorsError.headerNotUTF8(file: path)
        }
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(headerBytes), options: [])
        } catch {
            var reason = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "parse error"
            reason = reason.replacingOccurrences(of: "\n", with: " ")
            if reason.hasSuffix(".") { reason.removeLast() }
            throw SafeTensorsError.headerNotJSON(file: path, reason: reason)
        }
        guard let object = json as? [String: Any] else { throw SafeTensorsError.headerNotObject(file: path) }
        // JSONSerialization silently keeps one of two equal keys; find duplicates in the raw text.
        // (The reference crate keeps the last tensor of a name, which goes unnoticed when both
        // entries agree; a duplicated name is always a writer bug, so it is rejected here.)
        if let dup = firstDuplicateKey(headerBytes) {
            switch (dup.topLevelKey, dup.depth) {
            case (_, 1): throw SafeTensorsError.duplicateName(file: path, name: dup.key)
            case ("__metadata__", _):
                throw SafeTensorsError.invalidMetadata(file: path, reason: "key \"\(dup.key)\" appears more than once")
            default:
                throw SafeTensorsError.invalidEntry(file: path, tensor: dup.topLevelKey,
                                                    reason: "key \"\(dup.key)\" appears more than once")
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
                    throw SafeTensorsError.invalidMetadata(file: path, reason: "not a JSON object")
                }
                for (k, v) in dict {
                    guard let s = v as? String else {
                        throw SafeTensorsError.invalidMetadata(file: path, reason: "value of \"\(k)\" is not a string")
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
                throw SafeTensorsError.offsetsOutOfBounds(file: path, tensor: e.name, end: e.end - dataStart, dataSize: dataSize)
            }
            if e.begin < cursor, let previous {
                throw SafeTensorsError.overlappingTensors(file: path, tensor: e.name, other: previous)
            }
            if e.begin > cursor {
                throw SafeTensorsError.gapBeforeTensor(file: path, tensor: e.name,
                                                       gapBegin: cursor - dataStart, gapEnd: e.begin - dataStart)
            }
            cursor = e.end
            previous = e.name
        }
        if cursor != fileSize {
            throw SafeTensorsError.trailingBytes(file: path, used: cursor - dataStart, dataSize: dataSize)
        }
        return Parsed(entries: entries, metadata: metadata)
    }

    private static func parseEntry(name: String, value: Any, dataStart: Int, path: String) throws -> SafeTensorsFile.Entry {
        func bad(_ reason: String) -> SafeTensorsError { .invalidEntry(file: path, tensor: name, reason: reason) }
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
            throw SafeTensorsError.unknownDType(file: path, tensor: name, dtype: dtypeName)
        }
        if begin > end { throw SafeTensorsError.offsetsReversed(file: path, tensor: name, begin: begin, end: end) }
        var bytes = dtype.size
        for d in shape {
            let (p, overflow) = bytes.multipliedReportingOverflow(by: d)
            if overflow { throw SafeTensorsError.shapeOverflow(file: path, tensor: name, shape: shape) }
            bytes = p
        }
        if bytes != end - begin {
            throw SafeTensorsError.sizeMismatch(file: path, tensor: name, shapeBytes: bytes, offsetBytes: end - begin)
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

/// Builds a safetensors file in memory-light form (tensors are kept as their arrays) and writes it
/// atomically.
///
/// Output is deterministic and byte-identical to the reference implementation's (Python
/// `safetensors.torch.save_file`) for the same tensors and at most one metadata key: tensors ordered
/// by dtype, widest first (so every tensor's data stays aligned to its element size), then by name;
/// compact JSON header with `__metadata__` first (keys sorted, where the reference uses hash order),
/// padded with spaces to a multiple of 8 bytes.
public struct SafeTensorsWriter {
    enum Payload {
        case f32([Float])
        case f16([UInt16])
        case u8([UInt8])
        case i64([Int64])
        case i32([Int32])

        var dtype: SafeTensorsDType {
            switch self {
            case .f32: return .F32
            case .f16: return .F16
            case .u8: return .U8
            case .i64: return .I64
            case .i32: return .I32
            }
        }
        var count: Int {
            switch self {
            case let .f32(a): return a.count
            case let .f16(a): return a.count
            case let .u8(a): return a.count
            case let .i64(a): return a.count
            case let .i32(a): return a.count
            }
        }
        func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
            switch self {
            case let .f32(a): return try a.withUnsafeBytes(body)
            case let .f16(a): return try a.withUnsafeBytes(body)
            case let .u8(a): return try a.withUnsafeBytes(body)
            case let .i64(a): return try a.withUnsafeBytes(body)
            case let .i32(a): return try a.withUnsafeBytes(body)
            }
        }
    }

    struct Item {
        let name: String
        let shape: [Int]
        let payload: Payload
    }

    private var items: [Item] = []
    private var names = Set<String>()
    /// Problems found by `add` (which cannot throw); `write` reports the first one.
    private var problems: [(tensor: String, reason: String)] = []

    /// Free-form string metadata, stored as the header's `__metadata__`.
    public var metadata: [String: String] = [:]

    public init() {}

    /// Number of tensors added so far.
    public var count: Int { items.count }

    private mutating func append(_ name: String, _ shape: [Int], _ payload: Payload) {
        if name == "__metadata__" {
            problems.append((name, "the name is reserved for the metadata map")); return
        }
        if !names.insert(name).inserted {
            problems.append((name, "added more than once")); return
        }
        if shape.contains(where: { $0 < 0 }) {
            problems.append((name, "negative dimension in shape \(shape)")); return
        }
        let expected = shape.reduce(1, *)
        if expected != payload.count {
            problems.append((name, "shape \(shape) needs \(expected) elements, got \(payload.count)")); return
        }
        items.append(Item(name: name, shape: shape, payload: payload))
    }

    /// Adds a Float32 tensor (stored as F32).
    public mutating func add(_ name: String, _ t: Tensor) { append(name, t.shape, .f32(t.storage)) }

    /// Adds a Float32 tensor stored as F16 (each value rounded to nearest even; see `Half.bits`).
    public mutating func addHalf(_ name: String, _ t: Tensor) {
        append(name, t.shape, .f16(t.storage.map(Half.bits)))
    }

    /// Adds a U8 tensor of the given shape.
    public mutating func add(_ name: String, shape: [Int], uint8: [UInt8]) { append(name, shape, .u8(uint8)) }

    /// Adds an I64 tensor of the given shape.
    public mutating func add(_ name: String, shape: [Int], int64: [Int64]) { append(name, shape, .i64(int64)) }

    /// Adds an I32 tensor of the given shape.
    public mutating func add(_ name: String, shape: [Int], int32: [Int32]) { append(name, shape, .i32(int32)) }

    /// Tensors in the order they are laid out in the file.
    private var ordered: [Item] {
        items.sorted { a, b in
            let ra = a.payload.dtype.referenceRank, rb = b.payload.dtype.referenceRank
            if ra != rb { return ra > rb }
            // Bytewise UTF-8 order, as Rust's `String` comparison (Swift's `<` is Unicode-aware).
            return a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
        }
    }

    /// The complete header (JSON padded with spaces to a multiple of 8), without the length prefix.
    func headerBytes() -> [UInt8] {
        var json = "{"
        var first = true
        if !metadata.isEmpty {
            json += "\"__metadata__\":{"
            json += metadata.keys.sorted().map { "\(Self.jsonString($0)):\(Self.jsonString(metadata[$0]!))" }
                .joined(separator: ",")
            json += "}"
            first = false
        }
        var offset = 0
        for item in ordered {
            let bytes = item.payload.count * item.payload.dtype.size
            if !first { json += "," }
            first = false
            json += "\(Self.jsonString(item.name)):{\"dtype\":\"\(item.payload.dtype.rawValue)\","
            json += "\"shape\":[\(item.shape.map(String.init).joined(separator: ","))],"
            json += "\"data_offsets\":[\(offset),\(offset + bytes)]}"
            offset += bytes
        }
        json += "}"
        var out = Array(json.utf8)
        out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - out.count % 8) % 8))
        return out
    }

    /// Encodes a string as a JSON literal, escaping the way serde_json does (quote, backslash, and
    /// control characters only), so headers match the reference writer byte for byte.
    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }

    /// Writes the file atomically: a temporary file in the same directory, fsync'ed, then renamed over
    /// `path`, so readers never see a partial file. Tensor data is written straight from each
    /// tensor's storage; nothing is concatenated in memory.
    public func write(to path: String) throws {
        if let p = problems.first { throw SafeTensorsError.invalidTensor(file: path, tensor: p.tensor, reason: p.reason) }
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        var template = Array((directory + "/." + url.lastPathComponent + ".tmp.XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        if fd < 0 { throw SafeTensorsError.cannotWrite(file: path, reason: String(cString: strerror(errno))) }
        let tempPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        var succeeded = false
        defer {
            if !succeeded { unlink(tempPath) }
        }
        do {
            defer { close(fd) }
            // mkstemp creates 0600; model files are meant to be shared like any other output.
            fchmod(fd, 0o644)
            let header = headerBytes()
            var prefix = UInt64(header.count).littleEndian
            try withUnsafeBytes(of: &prefix) { try Self.writeAll(fd, $0, path) }
            try header.withUnsafeBytes { try Self.writeAll(fd, $0, path) }
            for item in ordered { try item.payload.withBytes { try Self.writeAll(fd, $0, path) } }
            if fsync(fd) != 0 { throw SafeTensorsError.cannotWrite(file: path, reason: String(cString: strerror(errno))) }
        }
        if rename(tempPath, path) != 0 {
            throw SafeTensorsError.cannotWrite(file: path, reason: String(cString: strerror(errno)))
        }
        succeeded = true
    }

    private static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, _ path: String) throws {
        let code = writeFully(fd, buffer)
        if code != 0 { throw SafeTensorsError.cannotWrite(file: path, reason: String(cString: strerror(code))) }
    }
}
