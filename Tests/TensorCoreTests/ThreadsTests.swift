import Foundation
import TensorCore
import XCTest

/// The threading rules: a parallel loop inside a parallel loop runs serially on its worker, serial-BLAS
/// regions nest, and the worker team runs every chunk exactly once whatever the loops around it do.
final class ThreadsTests: XCTestCase {
    func testNestedParallelLoopsRunSeriallyOnTheirWorker() {
        let saved = Threads.count
        defer { Threads.count = saved }
        Threads.count = 2
        XCTAssertFalse(Threads.isInParallelRegion)
        let lock = NSLock()
        var visits = [Int](repeating: 0, count: 4 * 5), nestedOnOtherThread = 0
        parallelFor(4) { i in
            XCTAssertTrue(Threads.isInParallelRegion)
            let worker = Thread.current
            parallelFor(5) { j in
                lock.lock()
                visits[i * 5 + j] += 1
                if Thread.current != worker { nestedOnOtherThread += 1 }
                lock.unlock()
            }
        }
        XCTAssertEqual(visits, [Int](repeating: 1, count: 20))
        XCTAssertEqual(nestedOnOtherThread, 0)
        XCTAssertFalse(Threads.isInParallelRegion)
    }

    func testSerialBLASRegionsNestAndPartitionRows() {
        var seen = [Int](repeating: 0, count: 100)
        Threads.withSerialBLAS {
            Threads.withSerialBLAS {}
            seen.withUnsafeMutableBufferPointer { s in
                parallelRowBlocks(100, minRows: 10) { rows in for r in rows { s[r] += 1 } }
            }
        }
        XCTAssertEqual(seen, [Int](repeating: 1, count: 100))
        let a: [Float] = [1, 2, 3, 4], b: [Float] = [1, 0, 0, 1]
        var c = [Float](repeating: 0, count: 4)
        sgemm(m: 2, n: 2, k: 2, a: a, b: b, c: &c)  // BLAS still works after the regions closed
        XCTAssertEqual(c, a)
    }

    /// Loops of changing width one after another (a worker left out of one round must not run the next round's
    /// chunk twice), some after the workers have gone to sleep, and loops started from several threads at once
    /// (all but one fall back to Dispatch): every index is visited once.
    func testWorkerTeamRunsEveryChunkOnceAcrossRoundsAndThreads() {
        let saved = Threads.count
        defer { Threads.count = saved }
        Threads.count = 3
        for round in 0..<2000 {
            let n = 1 + round % 4
            let visits = UnsafeMutableBufferPointer<Int>.allocate(capacity: n)
            defer { visits.deallocate() }
            visits.initialize(repeating: 0)
            parallelFor(n) { i in visits[i] += 1 }
            XCTAssertEqual(Array(visits), [Int](repeating: 1, count: n), "round \(round)")
            if round % 500 == 499 { usleep(1000) }  // past the spin window: the workers sleep and must be woken
        }
        let sums = UnsafeMutableBufferPointer<Int>.allocate(capacity: 4)
        defer { sums.deallocate() }
        sums.initialize(repeating: 0)
        DispatchQueue.concurrentPerform(iterations: 4) { caller in
            for _ in 0..<200 {
                let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: 7)
                counts.initialize(repeating: 0)
                parallelFor(7) { i in counts[i] += 1 }
                if counts.allSatisfy({ $0 == 1 }) { sums[caller] += 1 }
                counts.deallocate()
            }
        }
        XCTAssertEqual(Array(sums), [200, 200, 200, 200])
    }
}
