import Foundation
import Synchronization

/// The persistent threads that run `parallelFor`'s chunks: `Threads.count − 1` workers beside the calling thread.
///
/// Why not `DispatchQueue.concurrentPerform`: its workers sleep in the kernel between loops and take tens of
/// microseconds to wake, and the caller starts on the chunks meanwhile, so a short loop can take longer on two
/// threads than on one. A decoding step is a chain of such short loops (one per weight matrix). Here a worker that finishes a round keeps polling for the next one for `spinWindow`
/// (yielding the core to any other runnable thread, e.g. OpenBLAS's, on every poll) and only then sleeps, so
/// back-to-back loops start within a microsecond and the idle cost is bounded.
///
/// One loop at a time: a `parallelFor` that finds the team busy (another thread's loop is running) falls back
/// to Dispatch.
@usableFromInline
final class WorkerTeam: @unchecked Sendable {
    @usableFromInline static let shared = WorkerTeam()

    /// How long an idle worker keeps polling before it sleeps.
    static let spinWindow: UInt64 = 200_000  // ns

    /// Held by the thread whose loop the team is running.
    private let busy = NSLock()
    /// Guards `workers` (growing the team).
    private let membership = NSLock()
    private var workers = 0

    /// Round number × 2¹⁶ + the round's chunk count: one word, so a worker that reads it learns both at once
    /// (a late reader of an old round cannot pair it with a newer count). Written after `job`.
    private let round = Atomic<Int>(0)
    /// Workers that have finished the current round's chunk.
    private let finished = Atomic<Int>(0)
    /// Workers asleep on `wake`.
    private let sleepers = Atomic<Int>(0)
    private let wake = NSCondition()

    /// The round's body, written before `round` is bumped and read by the round's workers after.
    nonisolated(unsafe) private var job: ((Int) -> Void)?

    /// Runs `body(p)` for p in `0..<parts`, p = 0 on the calling thread, the others on workers 1…parts−1.
    /// Returns false, without running anything, when another thread's loop holds the team.
    @usableFromInline func run(parts: Int, _ body: (Int) -> Void) -> Bool {
        precondition(parts >= 1 && parts < 1 << 16, "worker team: \(parts) parts")
        guard busy.try() else { return false }
        defer { busy.unlock() }
        ensureWorkers(parts - 1)
        return withoutActuallyEscaping(body) { body in
            job = body
            finished.store(0, ordering: .relaxed)
            let next = (round.load(ordering: .relaxed) >> 16 + 1) << 16 | parts
            round.store(next, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                wake.lock(); wake.broadcast(); wake.unlock()
            }
            Threads.asParallelWorker { body(0) }
            // The workers started together with the caller, so they are close to done: poll, yielding the core
            // if one of them was descheduled.
            while finished.load(ordering: .acquiring) < parts - 1 { sched_yield() }
            job = nil
            return true
        }
    }

    private func ensureWorkers(_ count: Int) {
        membership.lock(); defer { membership.unlock() }
        while workers < count {
            workers += 1
            let index = workers, seen = round.load(ordering: .acquiring)
            let thread = Thread { [self] in work(index: index, seen: seen) }
            thread.name = "caption.worker.\(index)"
            thread.start()
        }
    }

    /// Worker `index` (1…): waits for each round, runs its chunk when the round has one for it.
    private func work(index: Int, seen start: Int) -> Never {
        Thread.current.threadDictionary[Threads.regionKey] = true
        var seen = start
        while true {
            seen = waitForRound(after: seen)
            if index < seen & 0xffff {
                job!(index)
                finished.add(1, ordering: .releasing)
            }
        }
    }

    /// Polls for a round newer than `seen` for `spinWindow`, then sleeps until one starts; returns its number.
    private func waitForRound(after seen: Int) -> Int {
        let deadline = DispatchTime.now().uptimeNanoseconds + Self.spinWindow
        while true {
            let r = round.load(ordering: .acquiring)
            if r != seen { return r }
            if DispatchTime.now().uptimeNanoseconds > deadline { break }
            sched_yield()
        }
        wake.lock()
        sleepers.add(1, ordering: .sequentiallyConsistent)
        while round.load(ordering: .sequentiallyConsistent) == seen { wake.wait() }
        sleepers.subtract(1, ordering: .sequentiallyConsistent)
        wake.unlock()
        return round.load(ordering: .acquiring)
    }
}
