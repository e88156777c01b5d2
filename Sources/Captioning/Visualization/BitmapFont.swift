import Imaging
import CaptionSupport
import CaptionData

/// A tiny built-in 5×7 pixel font for labels on figures: lower-case letters (upper case is drawn lower-case),
/// digits, space and `<>-'.,?!:/_`; anything else draws as a hollow box. Each glyph is 5 columns × 7 rows on a
/// 6-column advance, scaled by whole pixels.
public enum BitmapFont {
    /// Glyph width in unscaled pixels.
    public static let glyphWidth = 5
    /// Glyph height in unscaled pixels.
    public static let glyphHeight = 7
    /// Horizontal distance between glyph origins, in unscaled pixels.
    public static let advance = 6

    /// Width in pixels of `text` drawn at `scale` (no trailing gap).
    public static func width(of text: String, scale: Int = 1) -> Int {
        text.isEmpty ? 0 : (text.count * advance - 1) * scale
    }

    /// Draws `text` with its top-left corner at (x, y); pixels outside the image are clipped.
    public static func draw(_ text: String, into image: inout RGBImage, x: Int, y: Int, scale: Int = 1,
                            color: (UInt8, UInt8, UInt8) = (0, 0, 0)) {
        let (w, h) = (image.width, image.height)
        image.pixels.withUnsafeMutableBufferPointer { px in
            for (i, ch) in text.enumerated() {
                let rows = glyph(ch)
                let ox = x + i * advance * scale
                for r in 0..<glyphHeight {
                    for c in 0..<glyphWidth where rows[r] & (1 << (glyphWidth - 1 - c)) != 0 {
                        for dy in 0..<scale {
                            let py = y + r * scale + dy
                            guard py >= 0 && py < h else { continue }
                            for dx in 0..<scale {
                                let pxX = ox + c * scale + dx
                                guard pxX >= 0 && pxX < w else { continue }
                                let o = (py * w + pxX) * 3
                                px[o] = color.0; px[o + 1] = color.1; px[o + 2] = color.2
                            }
                        }
                    }
                }
            }
        }
    }

    /// The 7 row masks of a character (bit 4 = leftmost column).
    static func glyph(_ ch: Character) -> [UInt8] {
        let key = Character(ch.lowercased())
        return glyphs[key] ?? box
    }

    private static let box = rows("#####", "#...#", "#...#", "#...#", "#...#", "#...#", "#####")

    private static func rows(_ art: String...) -> [UInt8] {
        art.map { line in line.reduce(UInt8(0)) { ($0 << 1) | ($1 == "#" ? 1 : 0) } }
    }

    private static let glyphs: [Character: [UInt8]] = [
        " ": rows(".....", ".....", ".....", ".....", ".....", ".....", "....."),
        "a": rows(".....", ".....", ".###.", "....#", ".####", "#...#", ".####"),
        "b": rows("#....", "#....", "####.", "#...#", "#...#", "#...#", "####."),
        "c": rows(".....", ".....", ".####", "#....", "#....", "#....", ".####"),
        "d": rows("....#", "....#", ".####", "#...#", "#...#", "#...#", ".####"),
        "e": rows(".....", ".....", ".###.", "#...#", "#####", "#....", ".###."),
        "f": rows("..##.", ".#...", "####.", ".#...", ".#...", ".#...", ".#..."),
        "g": rows(".....", ".####", "#...#", "#...#", ".####", "....#", ".###."),
        "h": rows("#....", "#....", "####.", "#...#", "#...#", "#...#", "#...#"),
        "i": rows("..#..", ".....", ".##..", "..#..", "..#..", "..#..", ".###."),
        "j": rows("...#.", ".....", "..##.", "...#.", "...#.", "#..#.", ".##.."),
        "k": rows("#....", "#....", "#..#.", "#.#..", "##...", "#.#..", "#..#."),
        "l": rows(".##..", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."),
        "m": rows(".....", ".....", "##.#.", "#.#.#", "#.#.#", "#.#.#", "#.#.#"),
        "n": rows(".....", ".....", "####.", "#...#", "#...#", "#...#", "#...#"),
        "o": rows(".....", ".....", ".###.", "#...#", "#...#", "#...#", ".###."),
        "p": rows(".....", "####.", "#...#", "#...#", "####.", "#....", "#...."),
        "q": rows(".....", ".####", "#...#", "#...#", ".####", "....#", "....#"),
        "r": rows(".....", ".....", "#.##.", "##..#", "#....", "#....", "#...."),
        "s": rows(".....", ".....", ".####", "#....", ".###.", "....#", "####."),
        "t": rows(".#...", ".#...", "####.", ".#...", ".#...", ".#..#", "..##."),
        "u": rows(".....", ".....", "#...#", "#...#", "#...#", "#..##", ".##.#"),
        "v": rows(".....", ".....", "#...#", "#...#", "#...#", ".#.#.", "..#.."),
        "w": rows(".....", ".....", "#...#", "#...#", "#.#.#", "#.#.#", ".#.#."),
        "x": rows(".....", ".....", "#...#", ".#.#.", "..#..", ".#.#.", "#...#"),
        "y": rows(".....", "#...#", "#...#", "#...#", ".####", "....#", ".###."),
        "z": rows(".....", ".....", "#####", "...#.", "..#..", ".#...", "#####"),
        "0": rows(".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."),
        "1": rows("..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."),
        "2": rows(".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"),
        "3": rows("#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."),
        "4": rows("...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."),
        "5": rows("#####", "#....", "####.", "....#", "....#", "#...#", ".###."),
        "6": rows("..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."),
        "7": rows("#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."),
        "8": rows(".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."),
        "9": rows(".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."),
        "<": rows("...#.", "..#..", ".#...", "#....", ".#...", "..#..", "...#."),
        ">": rows(".#...", "..#..", "...#.", "....#", "...#.", "..#..", ".#..."),
        "-": rows(".....", ".....", ".....", "#####", ".....", ".....", "....."),
        "'": rows("..#..", "..#..", ".#...", ".....", ".....", ".....", "....."),
        ".": rows(".....", ".....", ".....", ".....", ".....", ".##..", ".##.."),
        ",": rows(".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."),
        "?": rows(".###.", "#...#", "....#", "...#.", "..#..", ".....", "..#.."),
        "!": rows("..#..", "..#..", "..#..", "..#..", "..#..", ".....", "..#.."),
        ":": rows(".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."),
        "/": rows(".....", "....#", "...#.", "..#..", ".#...", "#....", "....."),
        "_": rows(".....", ".....", ".....", ".....", ".....", ".....", "#####"),
    ]
}
