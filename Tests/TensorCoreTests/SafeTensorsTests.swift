import CaptionSupport
import Foundation
import TensorCore
import TestSupport
import XCTest

/// Reader and writer against files from the Python `safetensors` package
/// (fixtures: `scripts/make_safetensors_fixtures.py`).
final class SafeTensorsTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory
            .appendingPathComponent("safetensors-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    private func scratchPath(_ name: String) -> String { scratch.appendingPathComponent(name).path }

    // MARK: Expected values

    private struct Expected {
        var metadata: [String: String]
        var order: [String]
        var tensors: [String: (dtype: String, shape: [Int], values: [Any])]
    }

    private func loadExpected(_ relative: String) throws -> Expected {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path(relative)))
        let root = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        var tensors: [String: (String, [Int], [Any])] = [:]
        for (name, v) in try XCTUnwrap(root["tensors"] as? [String: [String: Any]]) {
            tensors[name] = (v["dtype"] as! String, v["shape"] as! [Int], v["values"] as! [Any])
        }
        return Expected(metadata: root["metadata"] as? [String: String] ?? [:],
                        order: root["order"] as! [String], tensors: tensors)
    }

    /// A JSON value from the fixture as the Float the reader should produce.
    private func float(_ v: Any) -> Float {
        if let s = v as? String {
            switch s {
            case "inf": return .infinity
            case "-inf": return -.infinity
            default: return .nan
            }
        }
        return Float((v as! NSNumber).doubleValue)
    }

    /// Bitwise-or-NaN equality, so -0 vs +0 and NaN are checked exactly.
    private func assertSameFloats(_ actual: [Float], _ expected: [Float], _ label: String,
                                  file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, label, file: file, line: line)
        for (i, (a, e)) in zip(actual, expected).enumerated() where !(a.isNaN && e.isNaN) && a.bitPattern != e.bitPattern {
            XCTFail("\(label)[\(i)]: \(a) != expected \(e)", file: file, line: line)
        }
    }

    private func checkAgainstExpected(_ fixture: String, _ json: String) throws {
        let file = try SafeTensorsFile(path: Fixtures.path(fixture))
        let expected = try loadExpected(json)
        XCTAssertEqual(file.names, expected.order, "names in data-offset order")
        XCTAssertEqual(file.metadata, expected.metadata)
        for (name, want) in expected.tensors {
            let info = try XCTUnwrap(file.info(name), name)
            XCTAssertEqual(info.dtype.rawValue, want.dtype, name)
            XCTAssertEqual(info.shape, want.shape, name)
            let t = try file.tensor(name)
            XCTAssertEqual(t.shape, want.shape, name)
            assertSameFloats(t.storage, want.values.map(float), name)
            XCTAssertEqual(try file.bytes(name).count, t.count * info.dtype.size, name)
            switch info.dtype {
            case .I64, .I32:
                XCTAssertEqual(try file.int64(name), want.values.map { ($0 as! NSNumber).int64Value }, name)
            case .U8:
                XCTAssertEqual(try file.uint8(name), want.values.map { ($0 as! NSNumber).uint8Value }, name)
                XCTAssertEqual(try file.int64(name), want.values.map { ($0 as! NSNumber).int64Value }, name)
            default:
                break
            }
        }
        XCTAssertEqual(Set(file.names), Set(expected.tensors.keys))
    }

    // MARK: Reading

    func testReadsEveryDtypeWrittenByPython() throws {
        try checkAgainstExpected("safetensors/all_dtypes.safetensors", "safetensors/all_dtypes.json")
    }

    func testReadsMisalignedTensorData() throws {
        try checkAgainstExpected("safetensors/unaligned.safetensors", "safetensors/unaligned.json")
    }

    func testScalarAndEmptyTensors() throws {
        let file = try SafeTensorsFile(path: Fixtures.path("safetensors/all_dtypes.safetensors"))
        let scalar = try file.tensor("f32.scalar")
        XCTAssertEqual(scalar.shape, [])
        XCTAssertEqual(scalar.storage, [2.5])
        XCTAssertEqual(try file.tensor("f32.empty").shape, [0])
        XCTAssertEqual(try file.tensor("i64.empty").shape, [2, 0])
        XCTAssertEqual(try file.int64("i64.empty"), [])
        XCTAssertEqual(try file.bytes("f32.empty").count, 0)
    }

    func testRawBytesViewIsLittleEndianData() throws {
        let file = try SafeTensorsFile(path: Fixtures.path("safetensors/all_dtypes.safetensors"))
        let raw = try file.bytes("f32.matrix")
        let t = try file.tensor("f32.matrix")
        XCTAssertEqual(raw.count, 24)
        for i in 0..<6 {
            XCTAssertEqual(Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))),
                           t.storage[i])
        }
    }

    func testMissingTensorAndWrongDTypeAreErrors() throws {
        let path = Fixtures.path("safetensors/all_dtypes.safetensors")
        let file = try SafeTensorsFile(path: path)
        XCTAssertNil(file.info("nope"))
        XCTAssertThrowsError(try file.tensor("nope")) { error in
            XCTAssertEqual(error as? CaptionError, SafeTensorsProblem.noSuchTensor(file: path, name: "nope").error)
            XCTAssertEqual("\(error)", "\(path): no tensor named \"nope\"")
        }
        XCTAssertThrowsError(try file.bytes("nope"))
        XCTAssertThrowsError(try file.uint8("f32.matrix")) { error in
            XCTAssertEqual(error as? CaptionError,
                           SafeTensorsProblem.wrongDType(file: path, tensor: "f32.matrix", actual: .F32, expected: "U8").error)
        }
        XCTAssertThrowsError(try file.int64("f32.matrix"))
        XCTAssertThrowsError(try file.int64("bf16.values"))
        XCTAssertThrowsError(try file.int32("i64.values"))
    }

    func testUnopenableFiles() throws {
        let missing = scratchPath("does-not-exist.safetensors")
        XCTAssertThrowsError(try SafeTensorsFile(path: missing)) { error in
            XCTAssertEqual(error as? CaptionError, SafeTensorsProblem.noSuchFile(file: missing).error)
            XCTAssertEqual((error as? CaptionError)?.kind, .notFound)
            XCTAssertEqual("\(error)", "\(missing): cannot open safetensors file: No such file or directory")
        }
        XCTAssertThrowsError(try SafeTensorsFile(path: scratch.path)) { error in
            XCTAssertEqual(error as? CaptionError,
                           SafeTensorsProblem.cannotOpen(file: self.scratch.path, reason: "not a regular file").error)
        }
        let empty = scratchPath("empty.safetensors")
        XCTAssertTrue(FileManager.default.createFile(atPath: empty, contents: Data()))
        XCTAssertThrowsError(try SafeTensorsFile(path: empty)) { error in
            XCTAssertEqual(error as? CaptionError, SafeTensorsProblem.fileTooSmall(file: empty, size: 0).error)
        }
    }

    /// Every malformed fixture fails with its own error case and a one-line "<file>: <problem>".
    func testEachMalformedFileGivesItsSpecificError() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("safetensors/malformed.json")))
        let manifest = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: [String: Any]])
        XCTAssertGreaterThan(manifest.count, 30)
        for (name, info) in manifest.sorted(by: { $0.key < $1.key }) {
            let expected = info["error"] as! String
            let path = Fixtures.path("safetensors/malformed/" + name)
            do {
                _ = try SafeTensorsFile(path: path)
                XCTFail("\(name): accepted, expected \(expected)")
            } catch let error as CaptionError {
                guard let (kind, pattern) = Self.problems[expected] else { return XCTFail("\(name): unknown case \(expected)") }
                XCTAssertEqual(error.file, path, "\(name): \(error)")
                XCTAssertEqual(error.kind, kind, "\(name): \(error)")
                XCTAssertNotNil(error.problem.range(of: pattern, options: [.regularExpression, .anchored]),
                                "\(name): \(error) is not \(expected)")
                let message = error.description
                XCTAssertTrue(message.hasPrefix(path + ": "), "\(name): \(message)")
                XCTAssertFalse(message.contains("\n"), "\(name): \(message)")
            } catch {
                XCTFail("\(name): unexpected error type \(error)")
            }
        }
    }

    /// The kind and the problem text (an anchored pattern) of each `SafeTensorsProblem` case the manifest names.
    static let problems: [String: (CaptionError.Kind, String)] = [
        "fileTooSmall": (.corrupt, "not a safetensors file: [0-9]+ bytes, shorter than the 8-byte header length$"),
        "emptyHeader": (.corrupt, "safetensors header length is zero$"),
        "headerTooLarge": (.corrupt, "safetensors header length [0-9]+ exceeds the [0-9]+-byte limit$"),
        "headerBeyondEnd": (.corrupt, "safetensors header length [0-9]+ runs past the end of the [0-9]+-byte file$"),
        "headerNotUTF8": (.corrupt, "safetensors header is not valid UTF-8$"),
        "headerNotJSON": (.corrupt, "safetensors header is not valid JSON: "),
        "headerNotObject": (.corrupt, "safetensors header is not a JSON object$"),
        "duplicateName": (.corrupt, "tensor name \".*\" appears more than once in the header$"),
        "invalidMetadata": (.corrupt, "invalid __metadata__: "),
        "invalidEntry": (.corrupt, "invalid header entry for tensor \".*\": "),
        "unknownDType": (.unsupported, "tensor \".*\" has unsupported dtype \".*\"$"),
        "shapeOverflow": (.corrupt, "tensor \".*\" shape \\[.*\\] is too large$"),
        "offsetsReversed": (.corrupt, "tensor \".*\" has data_offsets \\[[0-9]+, [0-9]+\\] with begin after end$"),
        "offsetsOutOfBounds": (.corrupt, "tensor \".*\" data ends at byte [0-9]+, past the [0-9]+-byte data section$"),
        "sizeMismatch": (.corrupt, "tensor \".*\" shape needs [0-9]+ bytes but data_offsets span [0-9]+ bytes$"),
        "overlappingTensors": (.corrupt, "tensors \".*\" and \".*\" overlap in the data section$"),
        "gapBeforeTensor": (.corrupt, "bytes [0-9]+\\.\\.<[0-9]+ of the data section before tensor \".*\" belong to no tensor$"),
        "trailingBytes": (.corrupt, "tensors cover [0-9]+ bytes but the data section has [0-9]+ \\(trailing bytes\\)$"),
    ]

    func testErrorMessagesNameTheProblem() throws {
        func message(_ fixture: String) -> String {
            do { _ = try SafeTensorsFile(path: Fixtures.path("safetensors/malformed/\(fixture).safetensors")); return "" }
            catch { return "\(error)" }
        }
        XCTAssertTrue(message("size_mismatch").hasSuffix("tensor \"a\" shape needs 8 bytes but data_offsets span 12 bytes"),
                      message("size_mismatch"))
        XCTAssertTrue(message("dtype_unknown").contains("\"F33\""), message("dtype_unknown"))
        XCTAssertTrue(message("duplicate_name").contains("\"a\""), message("duplicate_name"))
        XCTAssertTrue(message("duplicate_name_escaped").contains("\"ab\""), message("duplicate_name_escaped"))
        XCTAssertTrue(message("entry_shape_negative").hasSuffix("shape [-1]: -1 is not a non-negative integer"),
                      message("entry_shape_negative"))
        XCTAssertTrue(message("entry_shape_bool").hasSuffix("shape [true]: true is not a non-negative integer"),
                      message("entry_shape_bool"))
        XCTAssertTrue(message("offsets_overlap").contains("\"a\" and \"b\""), message("offsets_overlap"))
        XCTAssertTrue(message("trailing_bytes").contains("cover 4 bytes but the data section has 8"), message("trailing_bytes"))
    }

    /// Corruptions of a valid file, each of a kind that makes it invalid, are all rejected (never read, never a
    /// crash) with a one-line error naming the file and the problem. (A changed byte in the data section gives
    /// another valid file, which nothing can detect, so those are not tried.)
    func testCorruptedFilesAreRejectedWithTheirProblem() throws {
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("safetensors/all_dtypes.safetensors"))))
        let headerLength = Int(original.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let headerRange = 8..<(8 + headerLength)
        let header = String(decoding: original[headerRange], as: UTF8.self)
        let dataSize = original.count - headerRange.upperBound
        // The reasoning below needs a pure-ASCII header without escapes, padded with spaces.
        XCTAssertTrue(original[headerRange].allSatisfy { $0 < 0x80 && $0 != UInt8(ascii: "\\") })
        let padding = header.reversed().prefix { $0 == " " }.count
        XCTAssertGreaterThan(padding, 0)

        let path = scratchPath("corrupt.safetensors")
        var tried = 0
        func assertRejected(_ bytes: [UInt8], _ problem: String, _ label: @autoclosure () -> String,
                            line: UInt = #line) throws {
            // Plain write(2): Foundation's Data.write syncs, which makes many small files slow.
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            XCTAssertGreaterThanOrEqual(fd, 0)
            XCTAssertEqual(bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }, bytes.count)
            close(fd)
            tried += 1
            do {
                let file = try SafeTensorsFile(path: path)
                XCTFail("\(label()): accepted (\(file.names.count) tensors), expected \"\(problem)\"", line: line)
            } catch let error as CaptionError {
                let message = error.description
                XCTAssertTrue(message.hasPrefix(path + ": ") && message.contains(problem) && !message.contains("\n"),
                              "\(label()): \"\(message)\" does not name the problem \"\(problem)\"", line: line)
            } catch {
                XCTFail("\(label()): unexpected error type \(error)", line: line)
            }
        }
        func replacing(_ offset: Int, with byte: UInt8) -> [UInt8] {
            var bytes = original
            bytes[8 + offset] = byte
            return bytes
        }
        func withHeaderLength(_ n: UInt64) -> [UInt8] {
            var bytes = original
            withUnsafeBytes(of: n.littleEndian) { bytes.replaceSubrange(0..<8, with: $0) }
            return bytes
        }

        // Lengths, offsets and bytes are sampled (with every boundary case) to keep the number of files small.
        var rng = RNG(seed: 7)
        func sample(_ range: Range<Int>, _ count: Int) -> [Int] {
            (0..<count).map { _ in range.lowerBound + rng.int(below: range.count) }
        }
        // Truncated: the length prefix, the header or the data section comes up short.
        let dataStart = headerRange.upperBound
        for kept in Array(0..<16) + Array((dataStart - 3)..<(dataStart + 3)) + [original.count - 1] + sample(0..<original.count, 150) {
            let problem = kept < 8 ? "\(kept) bytes, shorter than the 8-byte header length"
                : kept < dataStart ? "header length \(headerLength) runs past the end of the \(kept)-byte file"
                : "past the \(kept - dataStart)-byte data section"
            try assertRejected(Array(original.prefix(kept)), problem, "truncated to \(kept) bytes")
        }
        // Bytes appended after the last tensor.
        for extra in 1...16 {
            let tail = (0..<extra).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            try assertRejected(original + tail, "cover \(dataSize) bytes but the data section has \(dataSize + extra) (trailing bytes)",
                               "\(extra) bytes appended")
        }
        // A wrong header length: zero, too large, past the end, or short (cutting the JSON, or only its padding,
        // which moves the data section's start).
        try assertRejected(withHeaderLength(0), "header length is zero", "header length 0")
        try assertRejected(withHeaderLength(SafeTensorsFile.maxHeaderLength + 1), "-byte limit", "header length over the limit")
        for n in [UInt64(original.count - 7), UInt64(original.count), SafeTensorsFile.maxHeaderLength] {
            try assertRejected(withHeaderLength(n), "header length \(n) runs past the end", "header length \(n)")
        }
        for shorter in Array(1...(padding + 2)) + [headerLength - 1] + sample(1..<headerLength, 100) {
            let problem = shorter <= padding ? "(trailing bytes)" : "header is not valid JSON"
            try assertRejected(withHeaderLength(UInt64(headerLength - shorter)), problem, "header length \(headerLength - shorter)")
        }
        // Any header byte replaced by a non-ASCII one: a lone UTF-8 lead or continuation byte.
        for offset in [0, headerLength - 1] + sample(0..<headerLength, 200) {
            let byte = UInt8(0x80 + rng.int(below: 0x80))
            try assertRejected(replacing(offset, with: byte), "header is not valid UTF-8", "header byte \(offset) = \(byte)")
        }
        // A quote replaced (an odd number of quotes leaves a string open), or a structural character outside
        // the strings (a bare `x` is no JSON token).
        var inString = false
        for (offset, c) in header.utf8.enumerated() {
            if c == UInt8(ascii: "\"") { inString.toggle() }
            guard c == UInt8(ascii: "\"") || (!inString && Array("{}[]:,".utf8).contains(c)) else { continue }
            try assertRejected(replacing(offset, with: UInt8(ascii: "x")), "header is not valid JSON",
                               "header byte \(offset) (\(UnicodeScalar(c))) = x")
        }
        // Per tensor: a key misspelt, an unknown dtype, or one digit of data_offsets changed (the range no longer
        // matches the shape, or ends before it begins).
        let entry = try NSRegularExpression(
            pattern: #""([^"]+)":\{"(dtype)":"([A-Z0-9]+)","(shape)":\[[0-9,]*\],"(data_offsets)":\[([0-9]+),([0-9]+)\]\}"#)
        let matches = entry.matches(in: header, range: NSRange(header.startIndex..., in: header))
        XCTAssertEqual(matches.count, 12)
        for m in matches {
            func text(_ group: Int) -> String { String(header[Range(m.range(at: group), in: header)!]) }
            func offset(_ group: Int) -> Int {
                header.utf8.distance(from: header.startIndex, to: Range(m.range(at: group), in: header)!.lowerBound)
            }
            let name = text(1), prefix = "tensor \"\(name)\""
            for group in 2...5 where group != 3 {
                try assertRejected(replacing(offset(group), with: UInt8(ascii: "X")), "\(prefix): missing \"\(text(group))\"",
                                   "\(name): key \(text(group)) misspelt")
            }
            let dtype = text(3)
            try assertRejected(replacing(offset(3), with: UInt8(ascii: "Q")), "\(prefix) has unsupported dtype \"Q\(dtype.dropFirst())\"",
                               "\(name): dtype \(dtype) changed")
            let begin = Int(text(6))!, end = Int(text(7))!
            for group in 6...7 {
                for (i, digit) in text(group).utf8.enumerated() {
                    var replacement: UInt8
                    repeat { replacement = UInt8(ascii: "1") + UInt8(rng.int(below: 9)) } while replacement == digit
                    var changed = Array(text(group).utf8)
                    changed[i] = replacement
                    let value = Int(String(decoding: changed, as: UTF8.self))!
                    let (b, e) = group == 6 ? (value, end) : (begin, value)
                    let problem = b > e ? "\(prefix) has data_offsets [\(b), \(e)] with begin after end"
                        : "\(prefix) shape needs \(end - begin) bytes but data_offsets span \(e - b) bytes"
                    try assertRejected(replacing(offset(group) + i, with: replacement), problem, "\(name): data_offsets [\(b), \(e)]")
                }
            }
        }
        XCTAssertGreaterThan(tried, 900)
    }

    func testHalfPrecisionConversionIsExactForEveryBitPattern() throws {
        // Build an F16 and a BF16 tensor holding all 65536 bit patterns and compare with the
        // standard library's conversions.
        let path = scratchPath("halves.safetensors")
        let n = 65536
        let header = "{\"bf16\":{\"dtype\":\"BF16\",\"shape\":[\(n)],\"data_offsets\":[0,\(2 * n)]},"
            + "\"f16\":{\"dtype\":\"F16\",\"shape\":[\(n)],\"data_offsets\":[\(2 * n),\(4 * n)]}}"
        var blob = [UInt8]()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { blob.append(contentsOf: $0) }
        blob.append(contentsOf: header.utf8)
        for _ in 0..<2 { for bits in 0..<n { blob.append(UInt8(bits & 0xFF)); blob.append(UInt8(bits >> 8)) } }
        try Data(blob).write(to: URL(fileURLWithPath: path))
        let file = try SafeTensorsFile(path: path)
        let bf16 = try file.tensor("bf16").storage
        let f16 = try file.tensor("f16").storage
        for bits in 0..<n {
            let b = Float(bitPattern: UInt32(bits) << 16)
            XCTAssertTrue(bf16[bits].bitPattern == b.bitPattern || (b.isNaN && bf16[bits].isNaN), "bf16 \(bits)")
            #if !(os(macOS) && arch(x86_64))
            let h = Float(Float16(bitPattern: UInt16(bits)))
            if !(h.bitPattern == f16[bits].bitPattern || (h.isNaN && f16[bits].isNaN)) {
                XCTFail("f16 0x\(String(bits, radix: 16)): \(f16[bits]) != \(h)")
                return
            }
            #endif
        }
    }

    // MARK: Writing

    /// The tensors `swift_written_contents()` in the fixture script describes.
    private func knownContents() -> SafeTensorsWriter {
        var w = SafeTensorsWriter()
        w.metadata = ["producer": "caption"]
        w.add("encoder.conv1.weight", Tensor(shape: [2, 3, 2, 2], storage: (0..<24).map { Float($0) * 0.5 - 3 }))
        w.add("encoder.bn1.num_batches_tracked", shape: [], int64: [1_234_567_890_123])
        w.add("decoder.fc.bias", Tensor(shape: [3], storage: [0.1, -0.2, 1e-8]))
        w.add("image", shape: [2, 3, 3], uint8: (0..<18).map { UInt8(($0 * 13) % 256) })
        w.add("tokens", shape: [2, 3], int64: [1, 5, 2, -7, 0, 1 << 33])
        w.add("lengths", shape: [2], int32: [3, -3])
        w.add("empty", Tensor(shape: [0, 4]))
        w.add("scalar", Tensor(shape: [], storage: [-0.75]))
        w.add("name with \"quotes\", / and é", shape: [1], uint8: [42])
        return w
    }

    /// Our writer reproduces the reference writer's bytes exactly. Set CAPTION_REGENERATE_FIXTURES=1
    /// to refresh `swift_written.safetensors`, which `make_safetensors_fixtures.py --check` verifies.
    func testWriterOutputMatchesPythonByteForByte() throws {
        let path = scratchPath("known.safetensors")
        try knownContents().write(to: path)
        let ours = try Data(contentsOf: URL(fileURLWithPath: path))
        let reference = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("safetensors/python_reference.safetensors")))
        XCTAssertEqual(ours.count, reference.count)
        XCTAssertTrue(ours == reference, "Swift writer output differs from python safetensors'")
        let committed = Fixtures.path("safetensors/swift_written.safetensors")
        if ProcessInfo.processInfo.environment["CAPTION_REGENERATE_FIXTURES"] != nil {
            try ours.write(to: URL(fileURLWithPath: committed))
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: committed)), ours)
    }

    func testRoundTrip() throws {
        var rng = RNG(seed: 3)
        let weight = Tensor.randn([4, 5, 3], rng: &rng)
        var w = SafeTensorsWriter()
        w.metadata = ["epoch": "3", "arch": "compact", "quote\"and\\backslash\n": "é\u{1}"]
        w.add("w", weight)
        w.add("zero-dim", Tensor(shape: [], storage: [.pi]))
        w.add("special", Tensor(shape: [4], storage: [.infinity, -.infinity, -0.0, .leastNonzeroMagnitude]))
        w.add("pixels", shape: [3, 1], uint8: [0, 128, 255])
        w.add("ids", shape: [3], int64: [.min, -1, .max])
        w.add("counts", shape: [1, 2], int32: [.min, .max])
        w.add("none", shape: [0], int64: [])
        XCTAssertEqual(w.count, 7)
        let path = scratchPath("roundtrip.safetensors")
        try w.write(to: path)

        let file = try SafeTensorsFile(path: path)
        XCTAssertEqual(file.metadata, w.metadata)
        XCTAssertEqual(Set(file.names), ["w", "zero-dim", "special", "pixels", "ids", "counts", "none"])
        XCTAssertEqual(try file.tensor("w"), weight)
        XCTAssertEqual(try file.tensor("zero-dim"), Tensor(shape: [], storage: [.pi]))
        assertSameFloats(try file.tensor("special").storage, [.infinity, -.infinity, -0.0, .leastNonzeroMagnitude], "special")
        XCTAssertEqual(file.info("pixels")?.dtype, .U8)
        XCTAssertEqual(file.info("pixels")?.shape, [3, 1])
        XCTAssertEqual(try file.uint8("pixels"), [0, 128, 255])
        XCTAssertEqual(try file.int64("ids"), [.min, -1, .max])
        XCTAssertEqual(try file.int32("counts"), [.min, .max])
        XCTAssertEqual(try file.int64("counts"), [Int64(Int32.min), Int64(Int32.max)])
        XCTAssertEqual(try file.int64("none"), [])
        // The header is padded to 8 bytes, and I64 data comes first, so everything is aligned.
        let raw = try Data(contentsOf: URL(fileURLWithPath: path))
        let headerLength = raw.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        XCTAssertEqual(headerLength % 8, 0)
    }

    func testEmptyWriterWritesAValidFile() throws {
        let path = scratchPath("empty.safetensors")
        try SafeTensorsWriter().write(to: path)
        // The reference's serialization of no tensors: "{}" padded to 8 bytes.
        XCTAssertEqual([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))),
                       [8, 0, 0, 0, 0, 0, 0, 0] + Array("{}      ".utf8))
        let file = try SafeTensorsFile(path: path)
        XCTAssertEqual(file.names, [])
        XCTAssertEqual(file.metadata, [:])
    }

    func testWriterRejectsBadInputWithoutTouchingTheTarget() throws {
        let path = scratchPath("model.safetensors")
        try Data("previous contents".utf8).write(to: URL(fileURLWithPath: path))
        let cases: [(SafeTensorsWriter, String)] = [
            ({ var w = SafeTensorsWriter(); w.add("a", Tensor(shape: [1])); w.add("a", Tensor(shape: [2])); return w }(),
             "added more than once"),
            ({ var w = SafeTensorsWriter(); w.add("ids", shape: [2, 2], int64: [1, 2, 3]); return w }(),
             "shape [2, 2] needs 4 elements, got 3"),
            ({ var w = SafeTensorsWriter(); w.add("px", shape: [-1], uint8: []); return w }(),
             "negative dimension"),
            ({ var w = SafeTensorsWriter(); w.add("__metadata__", Tensor(shape: [1])); return w }(),
             "reserved"),
        ]
        for (writer, reason) in cases {
            XCTAssertThrowsError(try writer.write(to: path)) { error in
                guard let error = error as? CaptionError else { return XCTFail("\(error)") }
                XCTAssertEqual(error.file, path)
                XCTAssertEqual(error.kind, .input)
                XCTAssertTrue(error.problem.hasPrefix("cannot write tensor \""), error.problem)
                XCTAssertTrue(error.problem.contains(reason), error.problem)
            }
        }
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "previous contents")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path), ["model.safetensors"])
    }

    func testWriteIntoMissingDirectoryFailsCleanly() throws {
        let path = scratchPath("no/such/dir/model.safetensors")
        var w = SafeTensorsWriter()
        w.add("a", Tensor(shape: [1]))
        XCTAssertThrowsError(try w.write(to: path)) { error in
            XCTAssertEqual(error as? CaptionError,
                           SafeTensorsProblem.cannotWrite(file: path, reason: "No such file or directory").error)
            XCTAssertEqual((error as? CaptionError)?.kind, .io)
        }
    }

    func testOverwriteReplacesAtomicallyAndLeavesNoTempFiles() throws {
        let path = scratchPath("ckpt.safetensors")
        for step in 0..<3 {
            var w = SafeTensorsWriter()
            w.metadata = ["step": "\(step)"]
            w.add("x", Tensor(shape: [2], repeating: Float(step)))
            try w.write(to: path)
            let file = try SafeTensorsFile(path: path)
            XCTAssertEqual(file.metadata["step"], "\(step)")
            XCTAssertEqual(try file.tensor("x").storage, [Float(step), Float(step)])
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path), ["ckpt.safetensors"])
    }

    /// A mapped file stays readable after the value that opened it is copied and the original dropped.
    func testMappingOutlivesTheOriginalValue() throws {
        var copy: SafeTensorsFile?
        do { copy = try SafeTensorsFile(path: Fixtures.path("safetensors/all_dtypes.safetensors")) }
        let file = try XCTUnwrap(copy)
        copy = nil
        XCTAssertEqual(try file.tensor("f32.scalar").storage, [2.5])
    }

    func testLargeWriteAndReadAreFast() throws {
        // 32 MB of F32 in 8 tensors: a quick sanity check that nothing is quadratic.
        var w = SafeTensorsWriter()
        for i in 0..<8 { w.add("layer\(i).weight", Tensor(shape: [1024, 1024], repeating: Float(i))) }
        let path = scratchPath("big.safetensors")
        let start = Date()
        try w.write(to: path)
        let file = try SafeTensorsFile(path: path)
        for i in 0..<8 { XCTAssertEqual(try file.tensor("layer\(i).weight").storage[1_048_575], Float(i)) }
        XCTAssertLessThan(Date().timeIntervalSince(start), 10)
    }

    /// F16 writing: every half value survives Float → half → Float → half, and in-between floats round to
    /// nearest even (halfway cases included), subnormals and overflow too; written files read back as F16.
    func testHalfPrecisionRoundingAndWriting() throws {
        for bits in 0...UInt16.max where (bits & 0x7C00) != 0x7C00 || (bits & 0x3FF) == 0 {
            XCTAssertEqual(Half.bits(Half.toFloat(bits)), bits, "\(bits)")
        }
        XCTAssertEqual(Half.bits(1 + 1.0 / 2048), 0x3C00)          // tie → even (1.0)
        XCTAssertEqual(Half.bits(1 + 3.0 / 2048), 0x3C02)          // tie → even (1 + 2⁻⁹)
        XCTAssertEqual(Half.bits(1 + 1.0 / 2048 + 1e-6), 0x3C01)   // above the tie
        XCTAssertEqual(Half.bits(65520), 0x7C00)                   // rounds up to ∞
        XCTAssertEqual(Half.bits(65519), 0x7BFF)
        XCTAssertEqual(Half.bits(-3e-8), 0x8001)                   // subnormal, rounded up
        XCTAssertEqual(Half.bits(2.9e-8), 0x0000)                  // below half the smallest
        XCTAssertEqual(Half.bits(.nan) & 0x7E00, 0x7E00)
        var inPlace: [Float] = [0.1, -2.5, 1e-5, 65520, -7e-8, 1 + 1.0 / 2048]
        let expected = inPlace.map { Half.toFloat(Half.bits($0)) }
        Half.round(&inPlace, count: inPlace.count)
        XCTAssertEqual(inPlace, expected)

        let values: [Float] = [0.1, -2.5, 1e-5, 3.14159, 60000, -7e-8]
        var writer = SafeTensorsWriter()
        writer.addHalf("w", Tensor(shape: [2, 3], storage: values))
        let path = NSTemporaryDirectory() + "half-\(getpid()).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try writer.write(to: path)
        let file = try SafeTensorsFile(path: path)
        XCTAssertEqual(file.info("w")?.dtype, .F16)
        XCTAssertEqual(try file.tensor("w").storage,
                       values.map { Half.toFloat(Half.bits($0)) })
    }
}
