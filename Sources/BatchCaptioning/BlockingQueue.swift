import Foundation
import CaptionSupport
import Captioning

/// A FIFO handed between threads: `push` never blocks (the batch pipeline bounds how many items exist at once
/// with `Credits`, so the queue itself needs no capacity), `pop` waits for an item or for `close()`.
final class BlockingQueue<T> {
    private let condition = NSCondition()
    /// Taken slots are set to nil at once, so a consumed item (a decoded input: S×S×3 floats) is freed when it
    /// is taken, not when the consumed prefix is next dropped.
    private var items: [T?] = []
    private var head = 0
    private var closed = false

    func push(_ item: T) {
        condition.lock()
        items.append(item)
        condition.signal()
        condition.unlock()
    }

    /// No more items will come; waiting and future `pop`s return what is left, then nil.
    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    /// The next item, waiting for one; nil once the queue is closed and empty.
    func pop() -> T? {
        condition.lock()
        defer { condition.unlock() }
        while head == items.count && !closed { condition.wait() }
        return takeLocked(1).first
    }

    /// Up to `limit` items for one batch: waits for the first, then keeps collecting while items keep arriving,
    /// handing over a short batch when none has come for `idle` seconds (or the queue closed). The idle rule is
    /// what lets `--sorted` runs go on when the record the writer waits for sits in this very batch.
    /// nil once the queue is closed and empty.
    func popBatch(limit: Int, idle: TimeInterval) -> [T]? {
        condition.lock()
        defer { condition.unlock() }
        while head == items.count && !closed { condition.wait() }
        if head == items.count { return nil }
        while items.count - head < limit && !closed {
            let before = items.count
            _ = condition.wait(until: Date(timeIntervalSinceNow: idle))
            if items.count == before { break }
        }
        return takeLocked(limit)
    }

    private func takeLocked(_ n: Int) -> [T] {
        let end = min(items.count, head + n)
        var taken: [T] = []
        taken.reserveCapacity(end - head)
        for i in head..<end {
            taken.append(items[i]!)
            items[i] = nil
        }
        head = end
        if head > 1024 && head * 2 > items.count {  // drop the consumed prefix now and then, not on every pop
            items.removeFirst(head)
            head = 0
        }
        return taken
    }
}

/// A counting limit on the items alive in the pipeline (queued paths, decoded inputs, records waiting for their
/// turn in `--sorted` order): taken before a file is handed out, given back once its record is written, so memory
/// stays flat however many files there are.
final class Credits {
    private let condition = NSCondition()
    private var available: Int
    private var cancelled = false

    init(_ count: Int) { available = count }

    /// Waits for a credit; false when the run was cancelled.
    func take() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while available == 0 && !cancelled { condition.wait() }
        if cancelled { return false }
        available -= 1
        return true
    }

    func give(_ n: Int = 1) {
        condition.lock()
        available += n
        condition.broadcast()
        condition.unlock()
    }

    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }
}
