import ArgumentParser
import CaptionData
import CaptionSupport
import BatchCaptioning
import Foundation
import TensorCore

/// `caption batch DIR [--out FILE] [--format jsonl|csv] [--recursive] [--resume] [--jobs N] [--batch-size B] [--sorted]
/// [--shard K/N | --shards N]`
struct BatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch",
        abstract: "Caption every image file under a folder, one record per file, resumably.",
        discussion: """
            Every file under DIR (not only *.jpg / *.png: images are told by their content) gets one record, \
            written as soon as it is done: {"image": PATH, "caption": ..., "tokens": [...], "log_prob": ...} as in \
            `caption --format json`, or {"image": PATH, "error": "..."} for a file that is not an image, is \
            truncated, unreadable or too large, a broken symbolic link or a symbolic link loop. PATH is DIR joined \
            with the path below it. CSV: columns image,caption,log_prob,error. \
            Order: as files finish (roughly the order the file system lists them; failures come out as soon as \
            they fail); --sorted: each folder's names in byte order, depth first, the same on every run. \
            --resume: cuts a torn last line left by a killed run and skips every file already recorded in --out \
            (captioned or failed). Memory stays flat however many files there are. A summary (captioned, failed, \
            skipped, images/s) ends the run on stderr. Exit status 0 when the run completed, even if files failed; \
            1 when it could not be done (DIR missing, bad weights, output not writable). \
            Sharding: --shard K/N (K zero-based) takes only the files whose path below DIR hashes to K (a stable \
            hash: the same split on every machine); N runs with K = 0..N-1 together give exactly the records of one \
            run. Without --shard the index comes from the scheduler when there is one: a SLURM array \
            (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT), a Kubernetes Indexed Job \
            (JOB_COMPLETION_INDEX, with --shards N), or the MPI rank and size under mpirun/srun. "{shard}" in --out \
            becomes K, so every shard writes (and --resume reads) its own file. Merge them with `caption batch-merge`.
            """
    )

    @Argument(help: "Folder of images.")
    var folder: String

    @Option(name: .long, help: "Output file (default: stdout).")
    var out: String?

    @Option(name: .long, help: "Output format: jsonl or csv.")
    var format: BatchFormat = .jsonl

    @Flag(name: .long, help: "Walk subfolders too (symbolic links are followed; loops are reported, not entered).")
    var recursive = false

    @Flag(name: .long, help: "Append to --out, skipping the files already recorded in it.")
    var resume = false

    @Option(name: .long, help: "Decoding threads (default: one per core beyond the first, at least 1).")
    var jobs: Int?

    @Option(name: .long, help: "Images per encoder pass and beam search.")
    var batchSize = 16

    @Flag(name: .long, help: "Records in walk order (names sorted), the same on every run, instead of as files finish.")
    var sorted = false

    @Option(name: .long, help: ArgumentHelp("Only this shard of the files: K/N, K zero-based (default: the scheduler's index, if any).",
                                            valueName: "K/N"))
    var shard: String?

    @Option(name: .long, help: "Shard count for a scheduler index without one (JOB_COMPLETION_INDEX of a Kubernetes Indexed Job).")
    var shards: Int?

    @OptionGroup var model: ModelOptions
    @OptionGroup var search: SearchOptions

    func validate() throws {
        if resume && out == nil { throw ValidationError("--resume needs --out FILE (the run to continue)") }
        if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1, got \(jobs)") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
    }

    func run() throws {
        model.log.apply()
        let shard = try BatchShard.resolve(explicit: self.shard, shards: shards, environment: ProcessInfo.processInfo.environment)
        let out = try outputPath(shard: shard)
        if let shard { Log.info("batch: shard \(shard) (\(shard.source))") }
        var isFolder: ObjCBool = false  // before the model loads: a mistyped DIR should fail at once
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder) else { throw CaptionError(file: folder, "no such folder") }
        guard isFolder.boolValue else { throw CaptionError(file: folder, "not a folder") }
        let captioner = try model.loadCaptioner()
        var options = BatchOptions()
        options.recursive = recursive
        options.sorted = sorted
        options.jobs = jobs ?? max(1, Threads.count - 1)
        options.batchSize = batchSize
        options.beam = search.beam
        options.maxLength = search.maxLength
        options.lengthPenalty = search.lengthPenalty
        options.shard = shard
        let display = ProgressDisplay()
        let summary: BatchProgress
        do {
            let output = try out.map { try BatchOutput(path: $0, format: format, resume: resume) }
                ?? BatchOutput(standardOutputIn: format)
            if output.repairedBytes > 0 {
                Log.info("batch: \(output.path ?? ""): cut a torn last record (\(output.repairedBytes) bytes) left by an interrupted run")
            }
            if resume && !output.recorded.isEmpty { Log.info("batch: \(output.recorded.count) file(s) already recorded; skipping them") }
            summary = try BatchCaptioner(captioner: captioner, options: options).run(folder: folder, output: output, progress: { show($0, on: display) })
        } catch {
            display.finish()
            throw error
        }
        display.finish()
        Log.info(String(format: "batch: %d captioned, %d failed, %d skipped in %.1f s (%.1f images/s)", summary.captioned,
                        summary.failed, summary.skipped, summary.seconds, summary.imagesPerSecond))
    }
}

extension BatchCommand {
    /// `--out` with `{shard}` replaced by the shard's index. Ranks started by an MPI launcher share one stdout, where
    /// their records would interleave: they need a file each.
    func outputPath(shard: BatchShard?) throws -> String? {
        guard let out else {
            if let shard, shard.origin == .mpiRank, shard.count > 1 {
                throw CaptionError.usage("\(shard.source): the ranks share stdout; give each its own file with --out, e.g. --out out.{shard}.jsonl")
            }
            return nil
        }
        guard out.contains("{shard}") else { return out }
        guard let shard else {
            throw CaptionError.usage("--out \(out) contains {shard}, but the run is not sharded (no --shard and no scheduler index)")
        }
        return out.replacingOccurrences(of: "{shard}", with: String(shard.index))
    }
}

/// The batch run's progress: the count, images/s and ETA (and the bar, on a terminal, once the total is known).
private func show(_ p: BatchProgress, on display: ProgressDisplay) {
    var text = "batch: \(p.done)" + (p.total.map { "/\($0)" } ?? "") + " files"
    text += String(format: ", %.1f images/s", p.imagesPerSecond)
    if let total = p.total, p.done > 0 {
        text += ", ETA " + ProgressDisplay.clock(p.seconds / Double(p.done) * Double(max(0, total - p.done)))
        display.update(text, done: p.done, total: total, force: p.done == total)
    } else {
        display.update(text)
    }
}
