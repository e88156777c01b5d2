import Foundation

/// Produces items `0..<count` in order on a background thread, at most `depth` items ahead of the consumer, so
/// that image decoding overlaps with the training step that consumes the previous batch.
public final class Pipeline<T> {
    private let condition = NSCondition()
    private var results: [Int: Result<T, Error>] = [:]
    private var consumed = 0
    private var cancelled = false
    private let count: Int

    /// Starts a thread calling `produce(0)`, `produce(1)`, ... at most `depth` items ahead of `next()`; it stops
    /// at the first error, which `next()` then throws.
    public init(count: Int, depth: Int = 1, produce: @escaping (Int) throws -> T) {
        self.count = count
        let thread = Thread { [condition] in
            for k in 0..<count {
                condition.lock()
                while !self.cancelled && k - self.consumed >= depth { condition.wait() }
                let stop = self.cancelled
                condition.unlock()
                if stop { return }
                let r = Result { try produce(k) }
                condition.lock()
                self.results[k] = r
                condition.broadcast()
                condition.unlock()
                if case .failure = r { return }
            }
        }
        thread.start()
    }

    /// The next item, waiting for it if needed; rethrows the producer's error.
    public func next() throws -> T {
        condition.lock()
        defer { condition.unlock() }
        precondition(consumed < count, "Pipeline: all \(count) items consumed")
        while results[consumed] == nil { condition.wait() }
        let r = results.removeValue(forKey: consumed)!
        consumed += 1
        condition.broadcast()
        return try r.get()
    }

    /// Stops the producer after its current item.
    public func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }
}
