import CaptionSupport
import TensorCore

/// One shard of a folder: the files whose path below the folder hashes to `index` out of `count`, so that `count`
/// runs with indices 0..<count together caption every file exactly once (`caption batch --shard K/N`).
///
/// The hash is FNV-1a 64 over the UTF-8 bytes of the relative path, finished with SplitMix64's mixer (`mix64`) so
/// that every output bit depends on every byte (FNV-1a alone keeps its low bits a function of the bytes' low bits,
/// which would put `img_1.png` and `img_3.png` in the same of two shards). It depends on nothing but the bytes: the
/// same on every machine, process and run (Swift's `Hasher` is seeded per process and cannot be used).
public struct BatchShard: Equatable, Sendable, CustomStringConvertible {
    /// This shard's number, 0 ≤ index < count.
    public let index: Int
    /// How many shards the folder is split into, at least 1.
    public let count: Int
    /// Where the shard came from, for the log: `--shard 1/3`, `SLURM_ARRAY_TASK_ID=5 (SLURM_ARRAY_TASK_MIN=4) of
    /// SLURM_ARRAY_TASK_COUNT=3`, ...
    public let source: String
    /// Which kind of source that was.
    public let origin: Origin

    /// What chose the shard.
    public enum Origin: Sendable, Equatable {
        /// `--shard K/N`.
        case option
        /// A SLURM array task's index.
        case slurmArray
        /// A Kubernetes Indexed Job's completion index.
        case indexedJob
        /// An MPI launcher's rank: the processes share one stdout.
        case mpiRank
    }

    /// A shard; throws a usage error unless 0 ≤ index < count.
    public init(index: Int, count: Int, source: String, origin: Origin = .option) throws {
        guard count >= 1 else { throw CaptionError.usage("\(source): the shard count must be at least 1, got \(count)") }
        guard index >= 0 && index < count else {
            throw CaptionError.usage("\(source): the shard index must be in 0..<\(count) (zero-based), got \(index)")
        }
        self.index = index
        self.count = count
        self.source = source
        self.origin = origin
    }

    /// `K/N` as `--shard` spells it: K zero-based, N at least 1.
    public static func parse(_ text: String) throws -> BatchShard {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let k = Int(parts[0]), let n = Int(parts[1]) else {
            throw CaptionError.usage("--shard must be K/N (K zero-based, 0 <= K < N), got '\(text)'")
        }
        return try BatchShard(index: k, count: n, source: "--shard \(text)")
    }

    /// `K/N`.
    public var description: String { "\(index)/\(count)" }

    /// The stable 64-bit hash of a path below the folder (see the type's documentation).
    public static func hash(_ relativePath: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in relativePath.utf8 {
            h ^= UInt64(byte)
            h = h &* 0x0000_0100_0000_01B3
        }
        return mix64(h)
    }

    /// The shard (0..<count) that a path below the folder belongs to.
    public static func shard(of relativePath: String, count: Int) -> Int {
        Int(hash(relativePath) % UInt64(count))
    }

    /// True when `relativePath` (below the folder, `sub/name.jpg`) belongs to this shard.
    public func contains(relativePath: String) -> Bool {
        count == 1 || Self.shard(of: relativePath, count: count) == index
    }

    /// The shard to run: `explicit` (`--shard K/N`) when given, else the scheduler's index from `environment`,
    /// else nil (the whole folder).
    ///
    /// The environment is read in this order, the first that is set deciding:
    /// - a SLURM array job: `SLURM_ARRAY_TASK_ID` − `SLURM_ARRAY_TASK_MIN` (0 when unset), divided by
    ///   `SLURM_ARRAY_TASK_STEP` when that is set, of `SLURM_ARRAY_TASK_COUNT`;
    /// - a Kubernetes Indexed Job: `JOB_COMPLETION_INDEX`, of `shards` (Kubernetes does not export the count);
    /// - an MPI launcher (`mpirun`, `srun --mpi=...`): `OMPI_COMM_WORLD_RANK` of `OMPI_COMM_WORLD_SIZE`, `PMI_RANK`
    ///   of `PMI_SIZE`, or `PMIX_RANK` of `OMPI_COMM_WORLD_SIZE` (or `shards`).
    /// `shards` (`--shards N`) gives the count where the environment has none and must agree with it where it has
    /// one. An array index and an MPI size above 1 together are refused: every rank of the task would do the same
    /// shard.
    public static func resolve(explicit: String?, shards: Int?, environment: [String: String]) throws -> BatchShard? {
        if let shards, shards < 1 { throw CaptionError.usage("--shards must be at least 1, got \(shards)") }
        if let explicit {
            if shards != nil { throw CaptionError.usage("give either --shard K/N or --shards N, not both") }
            return try parse(explicit)
        }
        let env = Environment(values: environment)
        let array = try env.slurmArray(shards: shards) ?? env.indexedJob(shards: shards)
        // With an array index the rank only matters for the ambiguity check below.
        let mpi = array == nil ? try env.mpiRank(shards: shards) : (try? env.mpiRank(shards: nil)) ?? nil
        if let array, let mpi, mpi.count > 1 {
            throw CaptionError.usage("\(array.source) and \(mpi.source) are both set: every rank would do the same shard; "
                                     + "give each process its own --shard K/N")
        }
        if let shard = array ?? mpi { return shard }
        if let shards {
            throw CaptionError.usage("--shards \(shards) needs the shard index from the scheduler (JOB_COMPLETION_INDEX, "
                                     + "SLURM_ARRAY_TASK_ID or an MPI rank), and none is set; give --shard K/N instead")
        }
        return nil
    }

    /// The variables `resolve` reads, parsed with errors that name them.
    private struct Environment {
        let values: [String: String]

        func int(_ name: String) throws -> Int? {
            guard let text = values[name] else { return nil }
            guard let n = Int(text) else {
                throw CaptionError.usage("\(name)=\(text) is not an integer")
            }
            return n
        }

        /// `count` from the environment, checked against `--shards`.
        func count(_ name: String, _ value: Int, shards: Int?) throws -> Int {
            if let shards, shards != value {
                throw CaptionError.usage("--shards \(shards) disagrees with \(name)=\(value)")
            }
            return value
        }

        func slurmArray(shards: Int?) throws -> BatchShard? {
            guard let id = try int("SLURM_ARRAY_TASK_ID") else { return nil }
            let min = try int("SLURM_ARRAY_TASK_MIN"), step = try int("SLURM_ARRAY_TASK_STEP") ?? 1
            var source = "SLURM_ARRAY_TASK_ID=\(id)"
            var index = id
            if let min {
                index -= min
                source += " (SLURM_ARRAY_TASK_MIN=\(min))"
            }
            if step > 1 {
                guard index % step == 0 else {
                    throw CaptionError.usage("\(source) is not on the array's SLURM_ARRAY_TASK_STEP=\(step); give --shard K/N")
                }
                index /= step
                source += " (SLURM_ARRAY_TASK_STEP=\(step))"
            }
            let n: Int
            if let total = try int("SLURM_ARRAY_TASK_COUNT") {
                n = try count("SLURM_ARRAY_TASK_COUNT", total, shards: shards)
                source += " of SLURM_ARRAY_TASK_COUNT=\(total)"
            } else if let shards {
                n = shards
                source += " of --shards \(shards)"
            } else {
                throw CaptionError.usage("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not; give --shards N or --shard K/N")
            }
            return try BatchShard(index: index, count: n, source: source, origin: .slurmArray)
        }

        func indexedJob(shards: Int?) throws -> BatchShard? {
            guard let index = try int("JOB_COMPLETION_INDEX") else { return nil }
            guard let shards else {
                throw CaptionError.usage("JOB_COMPLETION_INDEX=\(index) is set: give --shards N (the Job's completions) "
                                         + "to shard by it, or --shard K/N")
            }
            return try BatchShard(index: index, count: shards, source: "JOB_COMPLETION_INDEX=\(index) of --shards \(shards)", origin: .indexedJob)
        }

        func mpiRank(shards: Int?) throws -> BatchShard? {
            let pairs = [("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"), ("PMI_RANK", "PMI_SIZE"), ("PMIX_RANK", "OMPI_COMM_WORLD_SIZE")]
            for (rankName, sizeName) in pairs {
                guard let rank = try int(rankName) else { continue }
                if let size = try int(sizeName) {
                    let n = try count(sizeName, size, shards: shards)
                    return try BatchShard(index: rank, count: n, source: "\(rankName)=\(rank) of \(sizeName)=\(size)", origin: .mpiRank)
                }
                if let shards { return try BatchShard(index: rank, count: shards, source: "\(rankName)=\(rank) of --shards \(shards)", origin: .mpiRank) }
                throw CaptionError.usage("\(rankName) is set but \(sizeName) is not; give --shards N or --shard K/N")
            }
            return nil
        }
    }
}

extension FolderWalk {
    /// The path of an entry below the walk's root (`DIR/sub/name` → `sub/name`): what a shard hashes.
    public func relativePath(_ path: String) -> String {
        // By bytes: a name starting with a combining mark would join the "/" into one Character.
        let prefix = (root == "/" ? "/" : root + "/").utf8
        guard path.utf8.starts(with: prefix) else { return path }
        return String(decoding: path.utf8.dropFirst(prefix.count), as: UTF8.self)
    }
}
