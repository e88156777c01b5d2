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
            lock.lock(); defer { lock.unlock() }
            current = n
            if serialDepth == 0 { openblas_set_num_threads(Int32(n)) }
        }
    }

    /// Serial-BLAS regions open right now (any thread): BLAS goes back to `count` threads when the last closes.
    nonisolated(unsafe) private static var serialDepth = 0

    /// Runs `body` with OpenBLAS limited to one thread (for BLAS calls made from parallel workers),
    /// then restores the configured count. Regions nest and may overlap across threads: the count is
    /// restored only when the outermost one ends.
    public static func withSerialBLAS<R>(_ body: () throws -> R) rethrows -> R {
        lock.lock()
        serialDepth += 1
        if serialDepth == 1 { openblas_set_num_threads(1) }
        lock.unlock()
        defer {
            lock.lock()
            serialDepth -= 1
            if serialDepth == 0 { openblas_set_num_threads(Int32(current)) }
            lock.unlock()
        }
        return try body()
    }

    /// Runs `body` with the large SGEMMs this thread makes split over the worker team, each part on
    /// single-threaded BLAS (`sgemm`), instead of over OpenBLAS's threads. For a chain of layers that mixes
    /// BLAS calls with the project's own parallel loops (one image through the CNN): OpenBLAS's idle pool
    /// threads spin for a while after each multi-threaded call and then compete with the team for the cores.
    public static func withTeamGEMM<R>(_ body: () throws -> R) rethrows -> R {
        try withSerialBLAS {
            let dict = Thread.current.threadDictionary
            let outer = dict[teamGEMMKey]
            dict[teamGEMMKey] = true
            defer { dict[teamGEMMKey] = outer }
            return try body()
        }
    }

    @usableFromInline static let teamGEMMKey = "caption.Threads.teamGEMM"

    /// True inside `withTeamGEMM` on this thread.
    @usableFromInline static var splitsGEMM: Bool { Thread.current.threadDictionary[teamGEMMKey] != nil }

    @usableFromInline static let regionKey = "caption.Threads.parallelRegion"

    /// True on a worker of `parallelFor`: a parallel loop nested there runs serially on that worker, so
    /// loops inside loops never ask for more threads than `count`.
    @inlinable
    public static var isInParallelRegion: Bool { Thread.current.threadDictionary[regionKey] != nil }

    /// Runs `body` marked as a parallel worker (see `isInParallelRegion`).
    @inlinable
    static func asParallelWorker(_ body: () -> Void) {
        let dict = Thread.current.threadDictionary
        let outer = dict[regionKey]
        dict[regionKey] = true
        body()
        dict[regionKey] = outer
    }
}

/// Runs `body(i)` for every `i` in `0..<n`, spread over `Threads.count` workers in contiguous chunks.
/// Falls back to a plain loop for one thread, one item, or when already on a `parallelFor` worker. `body` must
/// be safe to call concurrently.
@inlinable
public func parallelFor(_ n: Int, minChunk: Int = 1, _ body: (Int) -> Void) {
    let workers = min(Threads.count, max(1, n / max(1, minChunk)))
    if workers <= 1 || n <= 1 || Threads.isInParallelRegion {
        for i in 0..<n { body(i) }
        return
    }
    func chunk(_ w: Int) {
        let lo = n * w / workers, hi = n * (w + 1) / workers
        for i in lo..<hi { body(i) }
    }
    if WorkerTeam.shared.run(parts: workers, chunk) { return }
    // Another thread's loop has the team: Dispatch's pool serves this one.
    withoutActuallyEscaping(chunk) { chunk in
        DispatchQueue.concurrentPerform(iterations: workers) { w in Threads.asParallelWorker { chunk(w) } }
    }
}

/// Runs `body` on up to `Threads.count` contiguous blocks of `0..<rows` in parallel, each block's BLAS calls
/// single-threaded (blocks of at least `minRows`). For a row-separable product that is followed by the
/// project's own parallel loops: OpenBLAS's pool threads spin (yielding) for a while after every multi-threaded
/// call and would compete with those loops for the cores.
public func parallelRowBlocks(_ rows: Int, minRows: Int = 16, _ body: (Range<Int>) -> Void) {
    let blocks = max(1, min(Threads.count, rows / max(1, minRows)))
    Threads.withSerialBLAS {
        parallelFor(blocks) { b in body((rows * b / blocks)..<(rows * (b + 1) / blocks)) }
    }
}
