import CaptionSupport
import Foundation
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

// The file layout and the validation rules are described in SafeTensorsHeader.swift.

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

    /// An empty file: no tensors, no metadata.
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
            json += metadata.keys.sorted().map { "\(JSONLine.string($0)):\(JSONLine.string(metadata[$0]!))" }
                .joined(separator: ",")
            json += "}"
            first = false
        }
        var offset = 0
        for item in ordered {
            let bytes = item.payload.count * item.payload.dtype.size
            if !first { json += "," }
            first = false
            json += "\(JSONLine.string(item.name)):{\"dtype\":\"\(item.payload.dtype.rawValue)\","
            json += "\"shape\":[\(item.shape.map(String.init).joined(separator: ","))],"
            json += "\"data_offsets\":[\(offset),\(offset + bytes)]}"
            offset += bytes
        }
        json += "}"
        var out = Array(json.utf8)
        out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - out.count % 8) % 8))
        return out
    }

    /// Writes the file atomically: a temporary file in the same directory, fsync'ed, then renamed over
    /// `path`, so readers never see a partial file. Tensor data is written straight from each
    /// tensor's storage; nothing is concatenated in memory.
    public func write(to path: String) throws {
        if let p = problems.first { throw SafeTensorsProblem.invalidTensor(file: path, tensor: p.tensor, reason: p.reason).error }
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        var template = Array((directory + "/." + url.lastPathComponent + ".tmp.XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        if fd < 0 { throw SafeTensorsProblem.cannotWrite(file: path, reason: String(cString: strerror(errno))).error }
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
            if fsync(fd) != 0 { throw SafeTensorsProblem.cannotWrite(file: path, reason: String(cString: strerror(errno))).error }
        }
        if rename(tempPath, path) != 0 {
            throw SafeTensorsProblem.cannotWrite(file: path, reason: String(cString: strerror(errno))).error
        }
        succeeded = true
    }

    private static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, _ path: String) throws {
        let code = writeFully(fd, buffer)
        if code != 0 { throw SafeTensorsProblem.cannotWrite(file: path, reason: String(cString: strerror(code))).error }
    }
}
