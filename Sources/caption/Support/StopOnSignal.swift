import Dispatch
import Foundation

/// Ctrl-C / SIGTERM during training: the first asks the trainer to stop after the current step (it checkpoints);
/// a second one exits at once.
final class StopOnSignal {
    private var sources: [DispatchSourceSignal] = []

    /// `label` starts the notice on stderr ("train", "video train").
    init(label: String, _ onStop: @escaping () -> Void) {
        var count = 0
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                count += 1
                if count > 1 { Foundation.exit(130) }
                Log.info("\n\(label): stopping after the current step (again to quit at once)")
                onStop()
            }
            source.resume()
            sources.append(source)
        }
    }

    /// Restores the default handling.
    func cancel() {
        for s in sources { s.cancel() }
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
}
