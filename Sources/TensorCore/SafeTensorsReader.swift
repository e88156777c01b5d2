import CaptionSupport
import Foundation
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

// The file layout and the validation rules are described in SafeTensorsHeader.swift.

/// A problem reading or writing a safetensors file. Not an error itself: every throw site throws `error`, a
/// `CaptionError` naming the file, whose one line `"<file>: <problem>"` is this value's `description`.
public enum SafeTensorsProblem: CustomStringConvertible, Equatable, Sendable {
    /// The file does not exist (`open` failed with ENOENT).
    case noSuchFile(file: String)
    /// The file could not be opened, stat'ed or mapped, for any other reason.
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

    /// The error every throw site throws: about `file`, with `problem` and `kind`.
    public var error: CaptionError { CaptionError(file: file, problem, kind: kind) }

    /// `"<file>: <problem>"`.
    public var description: String { "\(file): \(problem)" }

    /// The file the problem is about.
    public var file: String {
        switch self {
        case let .noSuchFile(f), let .cannotOpen(f, _), let .fileTooSmall(f, _), let .emptyHeader(f),
             let .headerTooLarge(f, _), let .headerBeyondEnd(f, _, _), let .headerNotUTF8(f), let .headerNotJSON(f, _),
             let .headerNotObject(f), let .duplicateName(f, _), let .invalidMetadata(f, _), let .invalidEntry(f, _, _),
             let .unknownDType(f, _, _), let .shapeOverflow(f, _, _), let .offsetsReversed(f, _, _, _),
             let .offsetsOutOfBounds(f, _, _, _), let .sizeMismatch(f, _, _, _), let .overlappingTensors(f, _, _),
             let .gapBeforeTensor(f, _, _, _), let .trailingBytes(f, _, _), let .noSuchTensor(f, _),
             let .wrongDType(f, _, _, _), let .invalidTensor(f, _, _), let .cannotWrite(f, _):
            return f
        }
    }

    /// What is wrong, without the file name.
    public var problem: String {
        switch self {
        case .noSuchFile: return "cannot open safetensors file: " + String(cString: strerror(ENOENT))
        case let .cannotOpen(_, r): return "cannot open safetensors file: \(r)"
        case let .fileTooSmall(_, n): return "not a safetensors file: \(n) bytes, shorter than the 8-byte header length"
        case .emptyHeader: return "safetensors header length is zero"
        case let .headerTooLarge(_, n):
            return "safetensors header length \(n) exceeds the \(SafeTensorsFile.maxHeaderLength)-byte limit"
        case let .headerBeyondEnd(_, n, size): return "safetensors header length \(n) runs past the end of the \(size)-byte file"
        case .headerNotUTF8: return "safetensors header is not valid UTF-8"
        case let .headerNotJSON(_, r): return "safetensors header is not valid JSON: \(r)"
        case .headerNotObject: return "safetensors header is not a JSON object"
        case let .duplicateName(_, n): return "tensor name \"\(n)\" appears more than once in the header"
        case let .invalidMetadata(_, r): return "invalid __metadata__: \(r)"
        case let .invalidEntry(_, t, r): return "invalid header entry for tensor \"\(t)\": \(r)"
        case let .unknownDType(_, t, d): return "tensor \"\(t)\" has unsupported dtype \"\(d)\""
        case let .shapeOverflow(_, t, s): return "tensor \"\(t)\" shape \(s) is too large"
        case let .offsetsReversed(_, t, b, e): return "tensor \"\(t)\" has data_offsets [\(b), \(e)] with begin after end"
        case let .offsetsOutOfBounds(_, t, e, size):
            return "tensor \"\(t)\" data ends at byte \(e), past the \(size)-byte data section"
        case let .sizeMismatch(_, t, s, o): return "tensor \"\(t)\" shape needs \(s) bytes but data_offsets span \(o) bytes"
        case let .overlappingTensors(_, t, o): return "tensors \"\(o)\" and \"\(t)\" overlap in the data section"
        case let .gapBeforeTensor(_, t, b, e): return "bytes \(b)..<\(e) of the data section before tensor \"\(t)\" belong to no tensor"
        case let .trailingBytes(_, u, size): return "tensors cover \(u) bytes but the data section has \(size) (trailing bytes)"
        case let .noSuchTensor(_, n): return "no tensor named \"\(n)\""
        case let .wrongDType(_, t, a, e): return "tensor \"\(t)\" is \(a.rawValue), not \(e)"
        case let .invalidTensor(_, t, r): return "cannot write tensor \"\(t)\": \(r)"
        case let .cannotWrite(_, r): return "cannot write safetensors file: \(r)"
        }
    }

    /// Missing file, unreadable or unwritable file, a dtype this reader does not know, or a file that is
    /// not a valid safetensors file; a missing tensor, a tensor of the wrong dtype and a tensor the writer
    /// was given inconsistently are bad input to the code that asked for them.
    public var kind: CaptionError.Kind {
        switch self {
        case .noSuchFile: return .notFound
        case .cannotOpen, .cannotWrite: return .io
        case .unknownDType: return .unsupported
        case .noSuchTensor, .wrongDType, .invalidTensor: return .input
        case .fileTooSmall, .emptyHeader, .headerTooLarge, .headerBeyondEnd, .headerNotUTF8, .headerNotJSON,
             .headerNotObject, .duplicateName, .invalidMetadata, .invalidEntry, .shapeOverflow, .offsetsReversed,
             .offsetsOutOfBounds, .sizeMismatch, .overlappingTensors, .gapBeforeTensor, .trailingBytes:
            return .corrupt
        }
    }
}

/// A read-only memory mapping of a whole file; unmapped when the last reference goes away.
final class SafeTensorsMapping: @unchecked Sendable {
    let base: UnsafeRawPointer
    let size: Int

    init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            throw (errno == ENOENT ? SafeTensorsProblem.noSuchFile(file: path)
                : .cannotOpen(file: path, reason: String(cString: strerror(errno)))).error
        }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw SafeTensorsProblem.cannotOpen(file: path, reason: String(cString: strerror(errno))).error }
        if (st.st_mode & S_IFMT) != S_IFREG { throw SafeTensorsProblem.cannotOpen(file: path, reason: "not a regular file").error }
        let size = Int(st.st_size)
        // mmap rejects zero-length mappings; such a file fails the length check anyway.
        if size < 8 { throw SafeTensorsProblem.fileTooSmall(file: path, size: size).error }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw SafeTensorsProblem.cannotOpen(file: path, reason: "mmap failed: " + String(cString: strerror(errno))).error
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

    /// Maps and validates the file at `path`; throws a `CaptionError` naming the file and the problem.
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
        guard let i = index[name] else { throw SafeTensorsProblem.noSuchTensor(file: path, name: name).error }
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
            throw SafeTensorsProblem.wrongDType(file: path, tensor: name, actual: e.dtype, expected: "U8").error
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
        default: throw SafeTensorsProblem.wrongDType(file: path, tensor: name, actual: e.dtype, expected: "an integer type").error
        }
    }

    /// The elements of an I32 tensor.
    public func int32(_ name: String) throws -> [Int32] {
        let e = try entry(name)
        guard e.dtype == .I32 else {
            throw SafeTensorsProblem.wrongDType(file: path, tensor: name, actual: e.dtype, expected: "I32").error
        }
        let src = mapping.base + e.begin
        return (0..<(e.end - e.begin) / 4).map { src.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self) }
    }
}
