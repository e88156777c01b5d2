import Foundation
import Imaging
import TensorCore
import CaptionSupport
import Captioning
#if canImport(Glibc)
import Glibc
#endif

/// How a batch run walks, decodes and searches.
public struct BatchOptions: Sendable {
    /// Walk subfolders too.
    public var recursive = false
    /// Write records in walk order (each folder's names in byte order) instead of as they finish.
    public var sorted = false
    /// Decoding and preprocessing threads.
    public var jobs = 1
    /// Images per encoder forward pass and per beam search (all their beams step together).
    public var batchSize = 16
    /// Beam width k of the search (1: greedy).
    public var beam = 3
    /// Most words per caption; nil: the model's `max_length`.
    public var maxLength: Int? = nil
    /// Length penalty of the beam search's final ranking (0: none; see `BeamSearch`).
    public var lengthPenalty: Float = 0
    /// Files larger than this are refused unread (the pixel limit of `ImageDecoder` applies as well).
    public var maxFileBytes = 1 << 30
    /// Nice value of the decoding threads relative to the process (see `BatchCaptioner`).
    public var decoderNice: Int32 = 5
    /// Only the files of this shard (by their path below the folder); nil: every file.
    public var shard: BatchShard? = nil

    /// The defaults: one decoding thread, batches of 16, beam 3, no length penalty.
    public init() {}

    /// Items alive at once (queued paths, decoded inputs, records waiting for their turn): three batches, one
    /// being captioned, one ready, one being decoded, and one item per decoding thread.
    var window: Int { 3 * batchSize + jobs }
}

/// Counts of a batch run, as reported while it goes and at its end.
public struct BatchProgress: Sendable {
    /// Files that got a caption record.
    public var captioned = 0
    /// Files that got a failure record.
    public var failed = 0
    /// Files already recorded in the output (`--resume`), not done again.
    public var skipped = 0
    /// Files this run has to do (skipped ones excluded), once a counting walk running alongside has finished.
    public var total: Int?
    /// Wall-clock seconds since the pipeline started (the model is already loaded).
    public var seconds: Double = 0

    /// Files recorded so far by this run, captioned or failed.
    public var done: Int { captioned + failed }
    /// Captioned images per second of wall clock.
    public var imagesPerSecond: Double { seconds > 0 ? Double(captioned) / seconds : 0 }
}

/// Captions every file of a folder through a pipeline:
///
///     walker ──paths──▶ decoding threads (read, sniff, decode, resize, normalise: 3×S×S each)
///            ──inputs──▶ this thread: batches of B → encoder (B×3×S×S → B×L×D) → beam search (all B·k beams)
///            ──records──▶ BatchOutput (one write per record, in completion or walk order)
///
/// Failures (not an image, truncated, unreadable, too large, a symlink loop) become `.failure` records straight
/// from the walker or the decoding threads; nothing stops the run but a failure to write the output.
///
/// Memory is flat: the walk is lazy and at most `options.window` items exist at once, whatever the folder's size.
///
/// Threads: the encoder and the beam search keep `Threads.count` threads (OpenBLAS and `parallelFor`) as everywhere
/// else; the decoding threads do no BLAS. They run at a lower priority (`decoderNice`) so that on a machine with as
/// many cores as `Threads.count` they fill the cores the compute leaves idle (its serial parts, e.g. the beam's top-k)
/// instead of preempting a BLAS thread that the others then wait for; when the compute runs out of input it blocks,
/// and the decoders get the whole machine.
public final class BatchCaptioner {
    /// The loaded model that captions each batch.
    public let captioner: Captioner
    /// How the folder is walked, decoded and searched.
    public let options: BatchOptions

    /// A captioner for `options`, which must have positive `jobs`, `batchSize` and `beam`.
    public init(captioner: Captioner, options: BatchOptions) {
        precondition(options.jobs >= 1 && options.batchSize >= 1 && options.beam >= 1, "batch: jobs, batch size and beam must be positive")
        self.captioner = captioner
        self.options = options
    }

    /// A decoded, preprocessed file on its way to the encoder.
    private struct Input {
        let sequence: Int
        let image: String
        let tensor: Tensor
    }

    /// Captions every file under `folder` not already in `output.recorded`, writing one record per file.
    /// `progress` is called after each record (from whichever thread wrote it, never two at once).
    /// Throws when `folder` cannot be walked at all or the output cannot be written.
    @discardableResult
    public func run(folder: String, output: BatchOutput, progress: @escaping (BatchProgress) -> Void = { _ in }) throws -> BatchProgress {
        let walk = try FolderWalk(root: folder, recursive: options.recursive, sorted: options.sorted)
        let run = Run(output: output, sorted: options.sorted, credits: Credits(options.window), progress: progress)
        let paths = BlockingQueue<(Int, String)>(), inputs = BlockingQueue<Input>()
        let threads = DispatchGroup()
        let recorded = output.recorded

        spawn(threads) {  // the counting walk: only for the progress bar's total and ETA
            guard var counter = try? FolderWalk(root: folder, recursive: self.options.recursive, sorted: false) else { return }
            var n = 0
            while let entry = counter.next(), !run.isCancelled {
                if self.options.shard?.contains(relativePath: counter.relativePath(entry.path)) != false && !recorded.contains(entry.path) { n += 1 }
            }
            run.setTotal(n)
        }
        spawn(threads) {  // the walker: hands out sequence numbers, one credit per file
            var walk = walk, sequence = 0
            while let entry = walk.next() {
                if let shard = self.options.shard, !shard.contains(relativePath: walk.relativePath(entry.path)) { continue }
                if recorded.contains(entry.path) { run.skip(); continue }
                guard run.credits.take() else { break }
                switch entry {
                case .file(let path): paths.push((sequence, path))
                case .problem(let path, let why): run.emit(sequence, .failure(image: path, error: why))
                }
                sequence += 1
            }
            paths.close()
        }
        let decoders = Countdown(options.jobs) { inputs.close() }
        for _ in 0..<options.jobs {
            spawn(threads, nice: options.decoderNice) {
                defer { decoders.arrive() }
                while let (sequence, path) = paths.pop() {
                    if run.isCancelled { continue }  // drain, so the walker is never left waiting
                    do {
                        let image = try self.captioner.extractor.decoder.decode(regularFile: path, maxBytes: self.options.maxFileBytes)
                        inputs.push(Input(sequence: sequence, image: path, tensor: self.captioner.preprocessing.tensor(image)))
                    } catch let error as CaptionError {
                        run.emit(sequence, .failure(image: path, error: error.problem))
                    } catch {
                        run.emit(sequence, .failure(image: path, error: "\(error)"))
                    }
                }
            }
        }

        // A short wait for a batch to fill: long enough to collect what the decoders are about to deliver.
        while let batch = inputs.popBatch(limit: options.batchSize, idle: 0.02), !run.isCancelled {
            let results = captioner.caption(inputs: batch.map(\.tensor), beam: options.beam, maxLength: options.maxLength,
                                            lengthPenalty: options.lengthPenalty)
            for (input, result) in zip(batch, results) { run.emit(input.sequence, .caption(image: input.image, result)) }
        }
        run.cancel()  // stops the counting walk if it is still going; the rest has finished by now
        threads.wait()
        if let error = run.writeError { throw error }
        try output.finish()
        return run.snapshot()
    }

    /// Starts `body` on its own thread (not a GCD worker: those belong to `parallelFor`).
    private func spawn(_ group: DispatchGroup, nice: Int32 = 0, _ body: @escaping () -> Void) {
        group.enter()
        let thread = Thread {
            if nice != 0 { lowerThreadPriority(by: nice) }
            body()
            group.leave()
        }
        thread.stackSize = 1 << 22
        thread.start()
    }
}

/// The shared state of one run: counts, the output, the `--sorted` reordering, cancellation.
private final class Run {
    let output: BatchOutput
    let sorted: Bool
    let credits: Credits
    private let progress: (BatchProgress) -> Void
    private let lock = NSLock()
    private var counts = BatchProgress()
    private let started = Date()
    private var waiting: [Int: BatchRecord] = [:]
    private var nextToWrite = 0
    private var cancelled = false
    private(set) var writeError: Error?

    init(output: BatchOutput, sorted: Bool, credits: Credits, progress: @escaping (BatchProgress) -> Void) {
        self.output = output
        self.sorted = sorted
        self.credits = credits
        self.progress = progress
    }

    var isCancelled: Bool { lock.lock(); defer { lock.unlock() }; return cancelled }

    /// Writes record `sequence` now, or (sorted) once every earlier one is written; gives back its credit then.
    func emit(_ sequence: Int, _ record: BatchRecord) {
        lock.lock()
        defer { lock.unlock() }
        guard !cancelled else { return }
        if !sorted {
            write(record)
            return
        }
        waiting[sequence] = record
        while !cancelled, let next = waiting.removeValue(forKey: nextToWrite) {
            nextToWrite += 1
            write(next)
        }
    }

    /// Under the lock.
    private func write(_ record: BatchRecord) {
        do {
            try output.write(record)
        } catch {
            writeError = error
            cancelLocked()
            return
        }
        if case .caption = record { counts.captioned += 1 } else { counts.failed += 1 }
        credits.give()
        counts.seconds = Date().timeIntervalSince(started)
        progress(counts)
    }

    func skip() { lock.lock(); counts.skipped += 1; lock.unlock() }

    func setTotal(_ n: Int) { lock.lock(); counts.total = n; lock.unlock() }

    func snapshot() -> BatchProgress {
        lock.lock(); defer { lock.unlock() }
        var c = counts
        c.seconds = Date().timeIntervalSince(started)
        return c
    }

    func cancel() { lock.lock(); cancelLocked(); lock.unlock() }

    private func cancelLocked() {
        cancelled = true
        credits.cancel()
    }
}

/// Runs `last` when `count` threads have arrived.
private final class Countdown {
    private let lock = NSLock()
    private var remaining: Int
    private let last: () -> Void

    init(_ count: Int, last: @escaping () -> Void) {
        remaining = count
        self.last = last
    }

    func arrive() {
        lock.lock()
        remaining -= 1
        let done = remaining == 0
        lock.unlock()
        if done { last() }
    }
}

/// Raises the calling thread's nice value by `amount`. On Linux nice is per thread and `who` 0 means the calling
/// thread (not the whole process); elsewhere this does nothing.
private func lowerThreadPriority(by amount: Int32) {
    #if os(Linux)
    let which = __priority_which_t(PRIO_PROCESS.rawValue)
    _ = setpriority(which, 0, getpriority(which, 0) + amount)
    #endif
}
