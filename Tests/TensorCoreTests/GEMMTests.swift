import Foundation
import TensorCore
import TestSupport
import XCTest

final class GEMMTests: XCTestCase {
    /// Naive reference product for checking every transpose combination and strided operands.
    private func reference(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int, ta: Bool, tb: Bool,
                           lda: Int, ldb: Int) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n {
            var s: Float = 0
            for p in 0..<k {
                let av = ta ? a[p * lda + i] : a[i * lda + p]
                let bv = tb ? b[j * ldb + p] : b[p * ldb + j]
                s += av * bv
            }
            c[i * n + j] = s
        } }
        return c
    }

    /// Every transpose combination with padded leading dimensions; the larger shapes also inside
    /// `Threads.withTeamGEMM`, where C is split by rows (m ≥ n) or by columns (m < n) over two workers.
    func testAllTransposesAndStrides() {
        var rng = RNG(seed: 1)
        let saved = Threads.count
        defer { Threads.count = saved }
        Threads.count = 2
        let pad = 2
        for (m, n, k, team) in [(5, 7, 3, false), (70, 66, 64, true), (34, 130, 61, true)] {
            for ta in [false, true] { for tb in [false, true] {
                let lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad
                let a = (0..<((ta ? k : m) * lda)).map { _ in rng.normal() }
                let b = (0..<((tb ? n : k) * ldb)).map { _ in rng.normal() }
                let expected = reference(a, b, m: m, n: n, k: k, ta: ta, tb: tb, lda: lda, ldb: ldb)
                var c = [Float](repeating: 7, count: m * ldc)
                func multiply() {
                    sgemm(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 2, a: a, lda: lda, b: b, ldb: ldb,
                          beta: 0.5, c: &c, ldc: ldc)
                }
                if team { Threads.withTeamGEMM(multiply) } else { multiply() }
                let label = "\(m)×\(n)×\(k) ta=\(ta) tb=\(tb) team=\(team)"
                for i in 0..<m { for j in 0..<n {
                    XCTAssertEqual(c[i * ldc + j], 2 * expected[i * n + j] + 3.5, accuracy: 1e-3, label)
                } }
                for i in 0..<m { for j in n..<ldc { XCTAssertEqual(c[i * ldc + j], 7, "padding must stay untouched, " + label) } }
            } }
        }
    }

    func testTensorMatmul() {
        let a = Tensor(shape: [2, 3], storage: [1, 2, 3, 4, 5, 6])
        let b = Tensor(shape: [3, 2], storage: [7, 8, 9, 10, 11, 12])
        XCTAssertEqual(a.matmul(b).storage, [58, 64, 139, 154])
        XCTAssertEqual(a.matmul(a, transposeOther: true).storage, [14, 32, 32, 77])
    }

    func testRNGIsDeterministicAndResumable() throws {
        var r1 = RNG(seed: 42)
        _ = (0..<5).map { _ in r1.normal() }
        let saved = try JSONEncoder().encode(r1)
        var r2 = try JSONDecoder().decode(RNG.self, from: saved)
        XCTAssertEqual((0..<10).map { _ in r1.normal() }, (0..<10).map { _ in r2.normal() })
        var r3 = RNG(seed: 42), r4 = RNG(seed: 43)
        XCTAssertNotEqual(r3.next(), r4.next())
    }

    func testParallelForCoversEveryIndexOnce() {
        var hits = [Int](repeating: 0, count: 1000)
        hits.withUnsafeMutableBufferPointer { h in
            let p = h.baseAddress!
            parallelFor(1000) { i in p[i] += 1 }
        }
        XCTAssertEqual(hits, [Int](repeating: 1, count: 1000))
    }
}
