
/// The training tokenisation of the sgrvinod tutorial (and of Karpathy's split files): lower-case,
/// then split on every character that is not a letter or a digit, so punctuation disappears and
/// `man's` becomes `man s`.
///
/// Metrics use `PTBTokenizer` instead, as pycocoevalcap does.
public enum CaptionTokenizer {
    /// The caption's words: `"A man's hat, on the TABLE."` → `["a", "man", "s", "hat", "on", "the", "table"]`.
    public static func words(_ caption: String) -> [String] {
        caption.lowercased()
            .split(whereSeparator: { !($0.isLetter || $0.isNumber) })
            .map(String.init)
    }
}
