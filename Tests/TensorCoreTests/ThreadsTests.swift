import Foundation
import TensorCore
import XCTest

/// The threading rules: a parallel loop inside a parallel loop runs serially on its worker, and serial-BLAS
/// regions nest.
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
}
