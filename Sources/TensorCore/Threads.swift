import COpenBLAS
import Dispatch
import Foundation

/// One thread setting for the whole process: OpenBLAS's pool and the project's own parallel loops.
///
/// The rule that keeps the machine from being oversubscribed: a loop run with `parallelFor` may call
/// BLAS only inside `Threads.withSerialBLAS`, which drops OpenBLAS to one thread for its duration; a
/// layer that calls BLAS on whole batches runs serially and lets BLAS use every thread.
public enum Threads {
    nonisolated(unsafe) private static var current: Int = {
        let n = defaultCount()
        openblas_set_num_threads(Int32(n))
        return n
    }()
    private static let lock = NSLock()

    /// `CAPTION_THREADS` when set to a positive integer, else the number of active processors.
    public static func defaultCount() -> Int {
        if let s = ProcessInfo.processInfo.environment["CAPTION_THREADS"], let n = Int(s), n > 0 { return n }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }

    /// Number of threads used by BLAS and by `parallelFor`.
    public static var count: Int {
        get { lock.lock(); defer { lock.unlock() }; return current }
        set {
            let n = max(1, newValue)
            lock.lock(); current = n; lock.unlock()
            openblas_set_num_threads(Int32(n))
        }
    }

    /// Runs `body` with OpenBLAS limited to one thread (for BLAS calls made from parallel workers),
    /// then restores the configured count.
    public static func withSerialBLAS<R>(_ body: () throws -> R) rethrows -> R {
        let n = count
        openblas_set_num_threads(1)
        defer { openblas_set_num_threads(Int32(n)) }
        return try body()
    }
}

/// Runs `body(i)` for every `i` in `0..<n`, spread over `Threads.count` workers in contiguous chunks.
/// Falls back to a plain loop for one thread or one item. `body` must be safe to call concurrently.
@inlinable
public func parallelFor(_ n: Int, minChunk: Int = 1, _ body: (Int) -> Void) {
    let workers = min(Threads.count, max(1, n / max(1, minChunk)))
    if workers <= 1 || n <= 1 {
        for i in 0..<n { body(i) }
        return
    }
    withoutActuallyEscaping(body) { body in
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let lo = n * w / workers, hi = n * (w + 1) / workers
            for i in lo..<hi { body(i) }
        }
    }
}
