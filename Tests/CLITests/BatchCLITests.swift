import Foundation
import TestSupport
import XCTest

/// `caption batch` end to end on the committed tiny model: a folder of every kind of trouble accounted for file by
/// file, resuming after a torn last line and after a real kill, output formats and the exit statuses.
///
/// Permissions: the suite may run as root, who reads a mode-000 file or folder anyway. Those two entries are then
/// expected to be captioned / walked, and the "cannot be opened" path is covered for everyone by a FIFO named
/// `pipe.jpg` (refused unread: not a regular file) and a broken symbolic link.
final class BatchCLITests: CLITestCase {
    static let model = Fixtures.path("captioner/tiny_model")
    static let png = Fixtures.path("captioner/tiny_image.png")
    static let isRoot = geteuid() == 0

    var restore: [String] = []  // mode-000 paths to give back before cleaning up

    override func tearDownWithError() throws {
        for path in restore { chmod(path, 0o755) }
        try super.tearDownWithError()
    }

    func copy(_ fixture: String, to relative: String) throws {
        try FileManager.default.createDirectory(atPath: (path(relative) as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: fixture, toPath: path(relative))
    }

    /// The records of a JSONL output, each checked to be one JSON object with an "image".
    func records(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> [[String: Any]] {
        text.split(separator: "\n").compactMap { l in
            let object = try? JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any]
            XCTAssertNotNil(object?["image"] as? String, "not a record: \(l)", file: file, line: line)
            return object
        }
    }

    /// A folder with valid JPEG and PNG files, broken and non-image files, a FIFO, unreadable entries, nested
    /// folders and a symbolic link loop. Returns what each entry's record must say: nil for a caption, else a
    /// piece of its error.
    func makeMixedFolder() throws -> [String: String?] {
        try copy(Self.png, to: "mixed/a.png")
        try copy(Fixtures.path("images/jpeg_baseline.jpg"), to: "mixed/b.jpg")
        try copy(Fixtures.path("images/jpeg_gray.jpg"), to: "mixed/sub/c.jpg")
        try copy(Self.png, to: "mixed/sub/deeper/d.png")
        try copy(Self.png, to: "mixed/folder.jpg/e.png")  // a directory named like an image is walked, not read
        try copy(Fixtures.path("images/bad_truncated.png"), to: "mixed/sub/truncated.png")
        try copy(Fixtures.path("images/bad_huge.png"), to: "mixed/sub/huge.png")
        try copy(Self.png, to: "mixed/jpeg-named.txt")  // told by content: a PNG whatever its name
        XCTAssertTrue(FileManager.default.createFile(atPath: path("mixed/empty.jpg"), contents: Data()))
        XCTAssertTrue(FileManager.default.createFile(atPath: path("mixed/notes.txt"), contents: Data("not an image\n".utf8)))
        XCTAssertEqual(mkfifo(path("mixed/pipe.jpg"), 0o644), 0)
        try FileManager.default.createSymbolicLink(atPath: path("mixed/sub/deeper/loop"), withDestinationPath: "..")
        try FileManager.default.createSymbolicLink(atPath: path("mixed/broken.png"), withDestinationPath: "nowhere.png")
        try copy(Self.png, to: "mixed/locked.png")
        try copy(Self.png, to: "mixed/closed/f.png")
        for locked in ["mixed/locked.png", "mixed/closed"] {
            XCTAssertEqual(chmod(path(locked), 0), 0)
            restore.append(path(locked))
        }
        let m = path("mixed")
        var expected: [String: String?] = [
            "\(m)/a.png": nil, "\(m)/b.jpg": nil, "\(m)/sub/c.jpg": nil, "\(m)/sub/deeper/d.png": nil,
            "\(m)/folder.jpg/e.png": nil, "\(m)/jpeg-named.txt": nil,
            "\(m)/sub/truncated.png": "truncated PNG", "\(m)/sub/huge.png": "over the limit",
            "\(m)/empty.jpg": "file is empty", "\(m)/notes.txt": "not a JPEG or PNG file",
            "\(m)/pipe.jpg": "not a regular file (FIFO)", "\(m)/sub/deeper/loop": "symbolic link loop",
            "\(m)/broken.png": "broken symbolic link",
        ]
        if Self.isRoot {
            expected["\(m)/locked.png"] = .some(nil)
            expected["\(m)/closed/f.png"] = .some(nil)
        } else {
            expected["\(m)/locked.png"] = "permission denied"
            expected["\(m)/closed"] = "permission denied"
        }
        return expected
    }

    func testMixedFolderAccountsForEveryFileExactlyOnce() throws {
        let expected = try makeMixedFolder()
        let out = path("out.jsonl")
        let r = try CLIRunner.run(["batch", path("mixed"), "--recursive", "--out", out, "--weights", Self.model,
                                   "--batch-size", "3", "--jobs", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, "", "records go to --out")
        let got = records(try String(contentsOfFile: out, encoding: .utf8))
        XCTAssertEqual(got.count, expected.count, "one record per entry")
        XCTAssertEqual(Set(got.map { $0["image"] as! String }), Set(expected.keys))
        for record in got {
            let image = record["image"] as! String
            guard let want = expected[image] else { continue }
            if let problem = want {
                let error = try XCTUnwrap(record["error"] as? String, "\(image) should have failed")
                XCTAssertTrue(error.contains(problem), "\(image): \(error)")
                XCTAssertEqual(record.count, 2, "an error record has image and error only")
            } else {
                XCTAssertNil(record["error"], "\(image): \(record["error"] ?? "")")
                let tokens = try XCTUnwrap(record["tokens"] as? [String])
                XCTAssertEqual(record["caption"] as? String, tokens.joined(separator: " "))
                XCTAssertNotNil(record["log_prob"] as? Double)
            }
        }
        let failures = expected.values.filter { $0 != nil }.count
        XCTAssertTrue(r.stderr.contains("\(expected.count - failures) captioned, \(failures) failed, 0 skipped"), r.stderr)

        // The same fields and caption as `caption IMAGE --format json`.
        let single = try CLIRunner.run([path("mixed/a.png"), "--format", "json", "--weights", Self.model])
        let one = try XCTUnwrap(records(single.stdout).first)
        let batched = try XCTUnwrap(got.first { $0["image"] as? String == path("mixed/a.png") })
        XCTAssertEqual(Set(one.keys), Set(batched.keys))
        XCTAssertEqual(one["tokens"] as? [String], batched["tokens"] as? [String])
    }

    func testSortedOrderStdoutCSVAndNonRecursiveWalk() throws {
        _ = try makeMixedFolder()
        let sorted = try CLIRunner.run(["batch", path("mixed"), "--sorted", "--weights", Self.model, "--quiet"])
        XCTAssertEqual(sorted.status, 0, sorted.stderr)
        XCTAssertEqual(sorted.stderr, "")
        let names = records(sorted.stdout).map { ($0["image"] as! String).replacingOccurrences(of: path("mixed") + "/", with: "") }
        XCTAssertEqual(names, ["a.png", "b.jpg", "broken.png", "empty.jpg", "jpeg-named.txt", "locked.png", "notes.txt", "pipe.jpg"],
                       "top level only, in byte order")
        let again = try CLIRunner.run(["batch", path("mixed"), "--sorted", "--weights", Self.model, "--quiet", "--jobs", "3", "--batch-size", "2"])
        assertSameRecords(again.stdout, sorted.stdout, "jsonl")  // --sorted: the same on every run, whatever the batching

        let csv = try CLIRunner.run(["batch", path("mixed"), "--sorted", "--format", "csv", "--weights", Self.model, "--quiet"])
        XCTAssertEqual(csv.status, 0, csv.stderr)
        XCTAssertEqual(csv.stdoutLines.first, "image,caption,log_prob,error")
        XCTAssertEqual(csv.stdoutLines.count, 1 + names.count)
        XCTAssertTrue(csv.stdoutLines.contains("\(path("mixed/empty.jpg")),,,file is empty"), csv.stdout)
    }

    /// A run cut short leaves complete lines and maybe a torn last one; --resume cuts it and does the rest.
    func testResumeCutsATornLineAndSkipsWhatIsRecorded() throws {
        for i in 0..<12 { try copy(Self.png, to: "images/\(String(format: "%02d", i)).png") }
        try copy(Fixtures.path("images/bad_truncated.jpg"), to: "images/zz-truncated.jpg")
        for format in ["jsonl", "csv"] {
            let out = path("out.\(format)")
            let full = try CLIRunner.run(["batch", path("images"), "--sorted", "--format", format, "--out", out,
                                          "--weights", Self.model, "--quiet"])
            XCTAssertEqual(full.status, 0, full.stderr)
            let complete = try String(contentsOfFile: out, encoding: .utf8)
            let lines = complete.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            // Keep 5 lines (CSV: the header and 4 records) and half of the next one, as a killed writer might.
            let kept = lines[..<5].joined(separator: "\n") + "\n" + lines[5].prefix(lines[5].count / 2)
            try kept.write(toFile: out, atomically: true, encoding: .utf8)
            let resumed = try CLIRunner.run(["batch", path("images"), "--sorted", "--format", format, "--out", out,
                                             "--resume", "--weights", Self.model])
            XCTAssertEqual(resumed.status, 0, resumed.stderr)
            XCTAssertTrue(resumed.stderr.contains("cut a torn last record"), resumed.stderr)
            let skipped = format == "csv" ? 4 : 5
            XCTAssertTrue(resumed.stderr.contains("\(skipped) skipped"), resumed.stderr)
            assertSameRecords(try String(contentsOfFile: out, encoding: .utf8), complete, format)
            // Nothing left to do: a second resume adds nothing.
            let nothing = try CLIRunner.run(["batch", path("images"), "--format", format, "--out", out, "--resume",
                                             "--weights", Self.model])
            XCTAssertTrue(nothing.stderr.contains("0 captioned, 0 failed, 13 skipped"), nothing.stderr)
            assertSameRecords(try String(contentsOfFile: out, encoding: .utf8), complete, format)
        }
    }

    /// The same records in the same order as an uninterrupted `--sorted` run. Log-probabilities may differ in the
    /// last digits: a batch of other images changes the matrix products' blocking, hence the rounding.
    func assertSameRecords(_ got: String, _ want: String, _ format: String, file: StaticString = #filePath, line: UInt = #line) {
        func rows(_ text: String) -> [(String, Double?)] {
            text.split(separator: "\n").map { l in
                var fields = l.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                if format == "jsonl" {
                    let o = (try? JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any]) ?? [:]
                    fields = ["\(o["image"] ?? "")", "\(o["caption"] ?? "")", "\(o["log_prob"] ?? "")", "\(o["error"] ?? "")"]
                }
                return (fields.enumerated().filter { $0.offset != 2 }.map(\.element).joined(separator: "|"), Double(fields[2]))
            }
        }
        let (a, b) = (rows(got), rows(want))
        XCTAssertEqual(a.map(\.0), b.map(\.0), "\(format): the records of an uninterrupted --sorted run", file: file, line: line)
        for (x, y) in zip(a, b) where x.1 != nil || y.1 != nil {
            XCTAssertEqual(x.1 ?? .nan, y.1 ?? .nan, accuracy: 1e-4, x.0, file: file, line: line)
        }
    }

    /// A real kill (SIGKILL midway), then --resume: every file exactly once.
    func testKilledRunThenResumeHasNoDuplicatesAndNothingMissing() throws {
        let count = 600
        for i in 0..<count { try copy(Self.png, to: "many/\(i).png") }
        let out = path("killed.jsonl")
        let p = try CLIRunner.process(["batch", path("many"), "--out", out, "--weights", Self.model, "--quiet",
                                       "--batch-size", "1", "--jobs", "1", "--beam", "5"])
        p.standardError = FileHandle.nullDevice
        try p.run()
        let deadline = Date(timeIntervalSinceNow: 30)
        while p.isRunning && Date() < deadline {
            let size = (try? FileManager.default.attributesOfItem(atPath: out)[.size] as? Int) ?? 0
            if size > 2000 { break }
            usleep(1000)
        }
        let killed = p.isRunning
        if killed { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        let before = try String(contentsOfFile: out, encoding: .utf8)
        let r = try CLIRunner.run(["batch", path("many"), "--out", out, "--resume", "--weights", Self.model])
        XCTAssertEqual(r.status, 0, r.stderr)
        let images = records(try String(contentsOfFile: out, encoding: .utf8)).map { $0["image"] as! String }
        XCTAssertEqual(images.count, count, "no duplicates")
        XCTAssertEqual(Set(images), Set((0..<count).map { path("many/\($0).png") }), "nothing missing")
        if killed {
            XCTAssertLessThan(before.split(separator: "\n").count, count, "the kill came midway")
        } else {
            print("note: the run finished before it could be killed; only the resume bookkeeping was checked")
        }
    }

    func testWhatCannotBeDoneExitsOneWithOneLine() throws {
        var r = try CLIRunner.run(["batch", path("nowhere"), "--weights", Self.model])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "caption: error: \(path("nowhere")): no such folder\n")
        try copy(Self.png, to: "folder/a.png")
        r = try CLIRunner.run(["batch", path("folder"), "--weights", path("no-model")])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderrLines.count, 1, r.stderr)
        XCTAssertEqual(r.stdout, "")
        r = try CLIRunner.run(["batch", path("folder"), "--resume", "--weights", Self.model])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("caption: error: ") && r.stderr.contains("--resume needs --out"), r.stderr)
        // A file that is not a batch output is not appended to.
        let foreign = path("foreign.jsonl")
        try "{\"something\": 1}\n{\"else\": 2}\n".write(toFile: foreign, atomically: true, encoding: .utf8)
        r = try CLIRunner.run(["batch", path("folder"), "--out", foreign, "--resume", "--weights", Self.model])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "caption: error: \(foreign): line 1 is not a caption batch record; not resuming into it\n")
        XCTAssertEqual(try String(contentsOfFile: foreign, encoding: .utf8), "{\"something\": 1}\n{\"else\": 2}\n")
    }
}
