import ArgumentParser

/// Every subcommand, in the order `caption --help` lists them. Add a command here only once it works.
let allSubcommands: [ParsableCommand.Type] = [
    DescribeCommand.self,
    BatchCommand.self,
    BatchMergeCommand.self,
    ScoreCommand.self,
    AttendCommand.self,
    SynthCommand.self,
    TrainCommand.self,
    EvalCommand.self,
    MetricsCommand.self,
    FeaturesCommand.self,
    VideoCommand.self,
]
