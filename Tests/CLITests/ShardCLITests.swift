import Foundation
import TestSupport
import XCTest

/// `caption batch --shard K/N`, the scheduler fallbacks and `caption batch-merge`, end to end on the committed tiny
/// model and a 12-scene shapes set: the shards of a run together hold exactly its records, and their sorted merge
/// is byte for byte the unsharded `--sorted` output.
///
/// Every run uses `--batch-size 1`: a caption then depends on its image alone, not on which images share its
/// batch (log-probabilities can differ in the last bits between batch compositions), so sharded and unsharded
/// outputs can be compared byte for byte.
final class ShardCLITests: CLITestCase {
    static let model = Fixtures.path("captioner/tiny_model")

    /// A shapes set's images plus a subfolder and a file that is not an image (its error record is sharded too).
    func makeFolder() throws -> String {
        let images = try synthShapes("shapes") + "/images"
        try FileManager.default.createDirectory(atPath: images + "/sub", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: images + "/000001.png", toPath: images + "/sub/copy.png")
        try "not an image\n".write(toFile: images + "/notes.txt", atomically: true, encoding: .utf8)
        return images
    }

    @discardableResult
    func batch(_ folder: String, _ extra: [String], environment: [String: String] = [:],
               file: StaticString = #filePath, line: UInt = #line) throws -> CLIRunner.Run {
        let r = try caption(["batch", folder, "--recursive", "--weights", Self.model, "--batch-size", "1"] + extra, environment: environment)
        XCTAssertEqual(r.status, 0, r.stderr, file: file, line: line)
        return r
    }

    /// image → the record's line.
    func records(_ path: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: String] {
        var byImage: [String: String] = [:]
        for l in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") {
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any], file: file, line: line)
            let image = try XCTUnwrap(object["image"] as? String, file: file, line: line)
            XCTAssertNil(byImage.updateValue(String(l), forKey: image), "\(image) twice in \(path)", file: file, line: line)
        }
        return byImage
    }

    func testShardsTogetherGiveOneRunAndMergeSortedIsByteForByte() throws {
        let folder = try makeFolder()
        let whole = path("whole.jsonl")
        try batch(folder, ["--sorted", "--out", whole, "--quiet"])
        let all = try records(whole)
        XCTAssertEqual(all.count, 14)

        var union: [String: String] = [:]
        for k in 0..<3 {
            let r = try batch(folder, ["--shard", "\(k)/3", "--out", path("part.{shard}.jsonl"), "--jobs", "2"])
            XCTAssertTrue(r.stderr.hasPrefix("batch: shard \(k)/3 (--shard \(k)/3)\n"), r.stderr)
            let part = try records(path("part.\(k).jsonl"))
            XCTAssertFalse(part.isEmpty, "shard \(k) of 14 files is empty: the hash does not spread")
            XCTAssertTrue(r.stderr.contains("\(part.count - (part.keys.contains(folder + "/notes.txt") ? 1 : 0)) captioned"), r.stderr)
            for (image, line) in part { XCTAssertNil(union.updateValue(line, forKey: image), "\(image) in two shards") }
        }
        XCTAssertEqual(union, all, "the same records, none missing, none twice, the same captions")

        let merged = path("merged.jsonl")
        let m = try caption(["batch-merge", "--sorted", "--out", merged] + (0..<3).map { path("part.\($0).jsonl") })
        XCTAssertEqual(m.status, 0, m.stderr)
        XCTAssertEqual(m.stdout, "")
        XCTAssertEqual(m.stderr, "batch-merge: 14 record(s) from 3 file(s) into \(merged)\n")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: merged)), try Data(contentsOf: URL(fileURLWithPath: whole)))

        // Unsorted: file after file, the same records.
        let unsorted = path("unsorted.jsonl")
        XCTAssertEqual(try caption(["batch-merge", "--quiet", "--out", unsorted] + (0..<3).map { path("part.\($0).jsonl") }).status, 0)
        XCTAssertEqual(try records(unsorted), all)

        // A shard resumes on its own file: a torn last line is cut and the rest done again.
        let part1 = path("part.1.jsonl")
        let text = try String(contentsOfFile: part1, encoding: .utf8)
        let firstLine = text.prefix { $0 != "\n" }
        try (String(firstLine) + "\n" + "{\"image\": \"torn").write(toFile: part1, atomically: true, encoding: .utf8)
        let resumed = try batch(folder, ["--shard", "1/3", "--out", path("part.{shard}.jsonl"), "--resume"])
        XCTAssertTrue(resumed.stderr.contains("1 file(s) already recorded"), resumed.stderr)
        XCTAssertEqual(try records(part1).count, text.split(separator: "\n").count)
        XCTAssertEqual(try caption(["batch-merge", "--sorted", "--quiet", "--out", merged] + (0..<3).map { path("part.\($0).jsonl") }).status, 0)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: merged)), try Data(contentsOf: URL(fileURLWithPath: whole)))
    }

    func testCSVShardsMergeSortedLikeOneRun() throws {
        let folder = try makeFolder()
        let whole = path("whole.csv")
        try batch(folder, ["--sorted", "--format", "csv", "--out", whole, "--quiet"])
        for k in 0..<2 { try batch(folder, ["--shard", "\(k)/2", "--format", "csv", "--out", path("p\(k).csv"), "--quiet"]) }
        let merged = path("merged.csv")
        let m = try caption(["batch-merge", "--sorted", "--quiet", "--out", merged, path("p0.csv"), path("p1.csv")])
        XCTAssertEqual(m.status, 0, m.stderr)
        XCTAssertEqual(try String(contentsOfFile: merged, encoding: .utf8), try String(contentsOfFile: whole, encoding: .utf8))
    }

    /// Without --shard the scheduler's variables choose the shard, and it is the same as --shard K/N's.
    func testSchedulerVariablesPickTheShard() throws {
        let folder = try makeFolder()
        var explicit: [Set<String>] = []
        for k in 0..<3 {
            try batch(folder, ["--shard", "\(k)/3", "--out", path("x\(k).jsonl"), "--quiet"])
            explicit.append(Set(try records(path("x\(k).jsonl")).keys))
        }
        let cases: [(env: [String: String], extra: [String], shard: Int, why: String)] = [
            (["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "3"], [], 2,
             "SLURM_ARRAY_TASK_ID=2 of SLURM_ARRAY_TASK_COUNT=3"),
            (["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "3"], [], 1,
             "SLURM_ARRAY_TASK_ID=2 (SLURM_ARRAY_TASK_MIN=1) of SLURM_ARRAY_TASK_COUNT=3"),
            (["JOB_COMPLETION_INDEX": "0"], ["--shards", "3"], 0, "JOB_COMPLETION_INDEX=0 of --shards 3"),
            (["OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "3"], [], 1, "OMPI_COMM_WORLD_RANK=1 of OMPI_COMM_WORLD_SIZE=3"),
            (["PMI_RANK": "2", "PMI_SIZE": "3"], [], 2, "PMI_RANK=2 of PMI_SIZE=3"),
        ]
        for (n, c) in cases.enumerated() {
            let out = path("env\(n).{shard}.jsonl")
            let r = try batch(folder, ["--out", out] + c.extra, environment: c.env)
            XCTAssertTrue(r.stderr.hasPrefix("batch: shard \(c.shard)/3 (\(c.why))\n"), r.stderr)
            XCTAssertEqual(Set(try records(path("env\(n).\(c.shard).jsonl")).keys), explicit[c.shard], c.why)
        }
        // --quiet: nothing on stderr; --shard overrides the environment.
        let r = try batch(folder, ["--quiet", "--shard", "0/3", "--out", path("q.jsonl")],
                          environment: ["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "3"])
        XCTAssertEqual(r.stderr, "")
        XCTAssertEqual(Set(try records(path("q.jsonl")).keys), explicit[0])
    }

    func testBadShardValuesAndSchedulerMistakesAreOneLine() throws {
        let folder = try makeFolder()
        let bad: [([String], [String: String], String)] = [
            (["--shard", "3/3"], [:], "--shard 3/3: the shard index must be in 0..<3"),
            (["--shard=-1/3"], [:], "--shard -1/3: the shard index must be in 0..<3"),
            (["--shard", "1/0"], [:], "--shard 1/0: the shard count must be at least 1"),
            (["--shard", "one/3"], [:], "--shard must be K/N"),
            (["--shard", "1/3", "--shards", "3"], [:], "not both"),
            (["--shards", "3"], [:], "--shards 3 needs the shard index"),
            ([], ["JOB_COMPLETION_INDEX": "1"], "JOB_COMPLETION_INDEX=1 is set: give --shards N"),
            ([], ["SLURM_ARRAY_TASK_ID": "1"], "SLURM_ARRAY_TASK_COUNT is not"),
            ([], ["SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "3"], "must be in 0..<3"),
            (["--out", path("o.{shard}.jsonl")], [:], "contains {shard}, but the run is not sharded"),
            ([], ["OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "2"], "the ranks share stdout"),
        ]
        for (args, env, problem) in bad {
            let r = try caption(["batch", folder, "--weights", Self.model] + args, environment: env)
            let label = "\(args) \(env)"
            XCTAssertEqual(r.status, 1, label)
            XCTAssertEqual(r.stdout, "", label)
            XCTAssertEqual(r.stderrLines.count, 1, "\(label): \(r.stderr)")
            XCTAssertTrue(r.stderr.hasPrefix("caption: error: ") && r.stderr.contains(problem), "\(label): \(r.stderr)")
        }
        assertAbsent("o.{shard}.jsonl")
        assertAbsent("o.0.jsonl")
    }

    func testMergeRefusesOverlapsTornShardsAndMixedFormats() throws {
        let folder = try makeFolder()
        try batch(folder, ["--shard", "0/2", "--out", path("a.jsonl"), "--quiet"])
        try batch(folder, ["--shard", "1/2", "--out", path("b.jsonl"), "--quiet"])
        try batch(folder, ["--shard", "0/3", "--out", path("c.jsonl"), "--quiet"])  // another N: overlaps a or b
        try batch(folder, ["--shard", "1/2", "--format", "csv", "--out", path("b.csv"), "--quiet"])
        let a = try String(contentsOfFile: path("a.jsonl"), encoding: .utf8)
        try (a + "{\"image\": \"x").write(toFile: path("torn.jsonl"), atomically: true, encoding: .utf8)
        try "{\"image\": \"a.png\"}\n".write(toFile: path("dup.jsonl"), atomically: true, encoding: .utf8)
        try "{\"image\": \"a.png\"}\n{\"image\": \"a.png\", \"error\": \"x\"}\n".write(toFile: path("twice.jsonl"), atomically: true, encoding: .utf8)
        try "hello\n".write(toFile: path("hello.txt"), atomically: true, encoding: .utf8)

        let cases: [([String], String, String)] = [
            (["a.jsonl", "b.jsonl", "c.jsonl"], "c.jsonl", "is recorded in "),
            (["dup.jsonl", "dup.jsonl"], "dup.jsonl", "given twice"),
            (["twice.jsonl"], "twice.jsonl", "a.png is recorded twice in this file"),
            (["b.jsonl", "torn.jsonl"], "torn.jsonl", "its last line is not a complete caption batch record"),
            (["a.jsonl", "b.csv"], "b.csv", "is csv but \(path("a.jsonl")) is jsonl"),
            (["hello.txt"], "hello.txt", "not a caption batch output"),
            (["missing.jsonl"], "missing.jsonl", "no such file"),
        ]
        for (inputs, culprit, problem) in cases {
            let r = try caption(["batch-merge", "--out", path("all.jsonl")] + inputs.map(path))
            assertFails(r, naming: path(culprit), "\(inputs)")
            XCTAssertTrue(r.stderr.contains(problem), "\(inputs): \(r.stderr)")
            assertAbsent("all.jsonl", "\(inputs)")
        }
        let none = try caption(["batch-merge", "--out", path("all.jsonl")])
        XCTAssertEqual(none.status, 1)
        XCTAssertEqual(none.stderrLines.count, 1, none.stderr)
    }
}
