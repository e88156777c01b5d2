@testable import BatchCaptioning
import CaptionSupport
import Foundation
import XCTest

/// `BatchShard` in process: the hash is fixed (the same shards on every machine and run), `--shard` is validated,
/// and the scheduler's variables pick the shard they name. Also the sorted-walk order the merge sorts by.
final class BatchShardTests: XCTestCase {
    /// FNV-1a 64 then SplitMix64's mixer, values computed independently (Python, from the algorithms' definitions):
    /// if these change, every sharded run in progress would be split differently on resume.
    func testHashIsFixedAcrossProcessesAndMachines() {
        let expected: [(String, UInt64, Int, Int)] = [
            ("", 0xF52A_15E9_A9B5_E89B, 0, 5),
            ("000001.png", 0xD93E_907A_879B_CEBF, 2, 2),
            ("000002.png", 0x9B3E_A0CB_9E23_07EE, 1, 5),
            ("sub/c.jpg", 0x5384_C902_29AF_8603, 0, 5),
            ("photos/ä.jpg", 0xDA1D_723D_66B0_1BFF, 1, 6),
        ]
        for (path, hash, of3, of7) in expected {
            XCTAssertEqual(BatchShard.hash(path), hash, path)
            XCTAssertEqual(BatchShard.shard(of: path, count: 3), of3, path)
            XCTAssertEqual(BatchShard.shard(of: path, count: 7), of7, path)
        }
        let shard = try! BatchShard.parse("2/3")
        XCTAssertTrue(shard.contains(relativePath: "000001.png"))
        XCTAssertFalse(shard.contains(relativePath: "000002.png"))
        XCTAssertTrue(try! BatchShard.parse("0/1").contains(relativePath: "anything"))
    }

    func testParseValidatesKAndN() throws {
        XCTAssertEqual(try BatchShard.parse("0/1").description, "0/1")
        XCTAssertEqual(try BatchShard.parse("4/5").index, 4)
        for bad in ["3/3", "-1/3", "1/0", "0/-2", "abc", "1/", "/3", "1/2/3", "1.0/2", ""] {
            XCTAssertThrowsError(try BatchShard.parse(bad), bad) { error in
                let e = error as? CaptionError
                XCTAssertEqual(e?.kind, .usage, bad)
                XCTAssertFalse("\(error)".contains("\n"), bad)
            }
        }
    }

    func resolve(_ env: [String: String], shard: String? = nil, shards: Int? = nil) throws -> BatchShard? {
        try BatchShard.resolve(explicit: shard, shards: shards, environment: env)
    }

    func assertShard(_ got: BatchShard?, _ index: Int, _ count: Int, _ origin: BatchShard.Origin, line: UInt = #line) {
        XCTAssertEqual(got?.index, index, line: line)
        XCTAssertEqual(got?.count, count, line: line)
        XCTAssertEqual(got?.origin, origin, line: line)
    }

    func testEnvironmentFallbacks() throws {
        XCTAssertNil(try resolve([:]))
        XCTAssertNil(try resolve(["SLURM_JOB_ID": "7", "SLURM_PROCID": "0", "SLURM_NTASKS": "4"]), "a plain job step is not a shard")
        assertShard(try resolve(["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "3"]), 2, 3, .slurmArray)
        let offset = try resolve(["SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "4", "SLURM_ARRAY_TASK_COUNT": "3"])
        assertShard(offset, 1, 3, .slurmArray)
        XCTAssertEqual(offset?.source, "SLURM_ARRAY_TASK_ID=5 (SLURM_ARRAY_TASK_MIN=4) of SLURM_ARRAY_TASK_COUNT=3")
        assertShard(try resolve(["SLURM_ARRAY_TASK_ID": "14", "SLURM_ARRAY_TASK_MIN": "10", "SLURM_ARRAY_TASK_STEP": "2",
                                 "SLURM_ARRAY_TASK_COUNT": "3"]), 2, 3, .slurmArray)
        assertShard(try resolve(["JOB_COMPLETION_INDEX": "4"], shards: 5), 4, 5, .indexedJob)
        assertShard(try resolve(["OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "4"]), 1, 4, .mpiRank)
        assertShard(try resolve(["PMI_RANK": "3", "PMI_SIZE": "4"]), 3, 4, .mpiRank)
        assertShard(try resolve(["PMIX_RANK": "2", "OMPI_COMM_WORLD_SIZE": "3"]), 2, 3, .mpiRank)
        assertShard(try resolve(["PMIX_RANK": "2"], shards: 3), 2, 3, .mpiRank)
        // --shard wins over everything; SLURM's array over a rank of size 1.
        assertShard(try resolve(["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "3"], shard: "0/2"), 0, 2, .option)
        assertShard(try resolve(["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "3", "PMI_RANK": "0", "PMI_SIZE": "1"]),
                    2, 3, .slurmArray)

        let refused: [([String: String], Int?)] = [
            (["JOB_COMPLETION_INDEX": "1"], nil),                                          // no count
            (["JOB_COMPLETION_INDEX": "3"], 3),                                            // out of range
            (["SLURM_ARRAY_TASK_ID": "1"], nil),                                           // no count
            (["SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_COUNT": "3"], nil),            // ids from 1..: needs MIN
            (["SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "3"], nil),
            (["SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "3"], 4),              // --shards disagrees
            (["SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "3", "OMPI_COMM_WORLD_RANK": "0",
              "OMPI_COMM_WORLD_SIZE": "2"], nil),                                          // every rank the same shard
            (["OMPI_COMM_WORLD_RANK": "0"], nil),
            ([:], 3),                                                                      // --shards without an index
            ([:], 0),
        ]
        for (env, shards) in refused {
            XCTAssertThrowsError(try resolve(env, shards: shards), "\(env) --shards \(shards.map(String.init) ?? "-")") {
                XCTAssertEqual(($0 as? CaptionError)?.kind, .usage)
            }
        }
        XCTAssertThrowsError(try resolve([:], shard: "0/2", shards: 2))
    }

    func testWalkOrderComparesNameByName() throws {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("walk-order-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: tmp) }
        for name in ["a/x", "a-b", "a/y/z", "a.c", "B", "ä", "a/x0"] {
            let url = tmp.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            XCTAssertTrue(FileManager.default.createFile(atPath: url.path, contents: Data()))
        }
        let walked = Array(try FolderWalk(root: tmp.path, recursive: true, sorted: true)).map(\.path)
        XCTAssertEqual(walked.map { String($0.dropFirst(tmp.path.count + 1)) }, ["B", "a/x", "a/x0", "a/y/z", "a-b", "a.c", "ä"],
                       "a folder comes where its name sorts, so not in whole-path byte order")
        XCTAssertEqual(walked.reversed().sorted(by: FolderWalk.walkPrecedes), walked)
        XCTAssertEqual(walked.shuffled().sorted(by: FolderWalk.walkPrecedes), walked)
    }
}
