import ArgumentParser
import BatchCaptioning

/// `caption batch-merge --out FILE [--sorted] SHARD_FILE...`
struct BatchMergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch-merge",
        abstract: "Merge the outputs of the shards of a `caption batch` run into one file.",
        discussion: """
            Copies every record of the SHARD_FILEs (all JSONL or all CSV, as `caption batch` wrote them) into \
            --out, written atomically. Refuses an input that is not a complete batch output (a torn last record: \
            finish that shard with `caption batch --resume` first) and an image recorded twice (in one file or in \
            two). --sorted orders the records as `caption batch --sorted` does (each folder's names in byte order, \
            depth first), so merging the shards of a run gives byte for byte the output of the run unsharded; \
            otherwise they keep the inputs' order, file after file.
            """
    )

    @Argument(help: "The shards' output files.")
    var inputs: [String]

    @Option(name: .long, help: "The merged output file.")
    var out: String

    @Flag(name: .long, help: "Records in the order of `caption batch --sorted` instead of file after file.")
    var sorted = false

    @OptionGroup var log: LogOptions

    func run() throws {
        log.apply()
        let summary = try BatchMerge.merge(inputs: inputs, into: out, sorted: sorted)
        Log.info("batch-merge: \(summary.records) record(s) from \(summary.files) file(s) into \(out)")
    }
}
