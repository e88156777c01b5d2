import ArgumentParser

@main
struct CaptionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "caption",
        abstract: "Describe images in words (Show, Attend and Tell).",
        subcommands: []
    )
}
