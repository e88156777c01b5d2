import ArgumentParser
import NN

/// The scheduled-sampling options of both trainers (`caption train` and `caption video train`'s conditional
/// decoders), under the same names. `--ss-k`, `--ss-c` and `--ss-min`, the first spellings of `caption train`,
/// are still accepted (hidden from help).
struct SamplingOptions: ParsableArguments {
    @Option(name: .long, help: "Teacher-forcing schedule: none (teacher forcing, the default), linear, exponential or inverse-sigmoid.")
    var scheduledSampling: ScheduledSampling.Kind?
    @Option(name: .long, help: "Schedule k: linear start (1), exponential base (0.9999), inverse-sigmoid scale (1000).")
    var samplingK: Double?
    @Option(name: .long, help: "Linear schedule's decrease per step (default 1e-4).")
    var samplingC: Double?
    @Option(name: .long, help: "Floor of ε, the teacher-forcing probability (default 0).")
    var samplingMin: Double?

    @Option(name: .customLong("ss-k"), help: .hidden) var oldK: Double?
    @Option(name: .customLong("ss-c"), help: .hidden) var oldC: Double?
    @Option(name: .customLong("ss-min"), help: .hidden) var oldMinimum: Double?

    /// The values given under either spelling.
    var k: Double? { samplingK ?? oldK }
    var c: Double? { samplingC ?? oldC }
    var minimum: Double? { samplingMin ?? oldMinimum }

    /// The flags given, by their current names (for "cannot be changed with --resume").
    var given: [String] {
        [("--scheduled-sampling", scheduledSampling != nil), ("--sampling-k", k != nil), ("--sampling-c", c != nil),
         ("--sampling-min", minimum != nil)].filter(\.1).map(\.0)
    }

    func validate() throws {
        for (name, old, both) in [("--sampling-k", "--ss-k", samplingK != nil && oldK != nil),
                                  ("--sampling-c", "--ss-c", samplingC != nil && oldC != nil),
                                  ("--sampling-min", "--ss-min", samplingMin != nil && oldMinimum != nil)] where both {
            throw ValidationError("give \(name) or \(old) (its old spelling), not both")
        }
    }

    /// Rejects schedule parameters without a schedule. `sampleFlag`: the command's own sampling flag, when given.
    /// (Called from the command's `validate`, after its own checks.)
    func requireSchedule(sampleFlag: String? = nil) throws {
        guard scheduledSampling == nil, k != nil || c != nil || minimum != nil || sampleFlag != nil else { return }
        let names = ["--sampling-k", "--sampling-c", "--sampling-min"] + (sampleFlag.map { [$0] } ?? [])
        throw ValidationError(names.dropLast().joined(separator: ", ") + " and \(names.last!) need --scheduled-sampling")
    }

    /// The schedule asked for, nil when `--scheduled-sampling` is not given. `sampleModelToken`: the command's
    /// own flag for sampling the model's output instead of taking its most likely value.
    func schedule(sampleModelToken: Bool) -> ScheduledSampling? {
        scheduledSampling.map { ScheduledSampling(kind: $0, k: k, c: c ?? 1e-4, minimum: minimum ?? 0, sampleModelToken: sampleModelToken) }
    }
}
