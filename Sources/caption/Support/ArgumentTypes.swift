import ArgumentParser
import BatchCaptioning
import Captioning
import SyntheticWorld
import NN
import Video

// The library enums that options take by name: ArgumentParser parses them (and lists their values in help and
// in its one-line error) instead of each command matching raw values by hand.

extension BatchFormat: ExpressibleByArgument {}
extension ScheduledSampling.Kind: ExpressibleByArgument {}
extension AttentionDecoderConfig.AttentionActivation: ExpressibleByArgument {}
extension ShapeBackground: ExpressibleByArgument {}
extension ShapeKind: ExpressibleByArgument {}
extension ShapeColor: ExpressibleByArgument {}
extension MovingObjects.Kind: ExpressibleByArgument {}
extension VideoModelConfig.InputKind: ExpressibleByArgument {}
extension VideoModelConfig.CellKind: ExpressibleByArgument {}
extension VideoModelConfig.DecoderKind: ExpressibleByArgument {}
extension VideoModelConfig.ReadoutKind: ExpressibleByArgument {}

extension ShapeCombination: ExpressibleByArgument {
    /// `"red circle"`: a colour and a shape.
    public init?(argument: String) { self.init(argument) }
}

/// `--gate`: the context gate's name on the command line.
enum GateArgument: String, ExpressibleByArgument, CaseIterable {
    /// One gate value per context channel (the tutorial's).
    case vector
    /// One scalar gate (the paper's).
    case scalar

    var gate: AttentionDecoderConfig.Gate {
        switch self {
        case .vector: return .perChannel
        case .scalar: return .scalar
        }
    }
}

/// Parses a comma-separated list of values, e.g. `--shapes circle,star` (an `@Option`'s `transform`): items are
/// trimmed and lower-cased, empty ones skipped. An unknown item is named in the one-line error.
func commaSeparated<Element: ExpressibleByArgument>(_ text: String) throws -> [Element] {
    try text.split(separator: ",").compactMap { item in
        let word = item.trimmingCharacters(in: .whitespaces).lowercased()
        if word.isEmpty { return nil }
        guard let value = Element(argument: word) else {
            let known = Element.allValueStrings
            throw ValidationError("\"\(word)\" is not valid" + (known.isEmpty ? "" : " (known: \(known.joined(separator: ", ")))"))
        }
        return value
    }
}
