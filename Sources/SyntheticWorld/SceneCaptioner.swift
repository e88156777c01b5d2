import TensorCore
import CaptionSupport
import CaptionData

/// Writes captions that are true of a `ShapeScene`, from several grammatical families:
/// - listing: "a small red circle, two blue squares and an orange star"
/// - counting: "three shapes", "there are two green triangles", "a red circle and two other shapes"
/// - relations: "a red circle above a blue square", "the white star is to the left of the gray cross"
/// - position: "a yellow diamond in the top left corner"
/// - description: "a large purple cross", "a star that is green"
///
/// Truth conditions: counts are exact ("two circles" means exactly two circles); "a X rel a Y" holds
/// for some X and some Y; "the X" is used only when exactly one object fits X; relations come from
/// the objects' boxes (`ShapeRelation`); positions from the box centre's third of the canvas.
struct SceneCaptioner {
    let scene: ShapeScene
    let boxes: [BoundingBox]

    init(scene: ShapeScene) {
        self.scene = scene
        boxes = scene.objects.map { $0.boundingBox(canvas: scene.canvas) }
    }

    /// `count` distinct captions, drawn round-robin from the families in random order.
    func captions(count: Int, rng: inout RNG) -> [String] {
        var families = [listing(&rng), counting(&rng), relations(&rng), positions(&rng), descriptions(&rng)]
            .filter { !$0.isEmpty }
        Self.shuffle(&families, &rng)
        var chosen: [String] = []
        var seen = Set<String>()
        while chosen.count < count && families.contains(where: { !$0.isEmpty }) {
            for f in families.indices where chosen.count < count && !families[f].isEmpty {
                let caption = families[f].remove(at: rng.int(below: families[f].count))
                if seen.insert(caption).inserted { chosen.append(caption) }
            }
        }
        return chosen
    }

    // MARK: - Families

    private var objects: [ShapeObject] { scene.objects }

    /// All objects, grouped by colour and shape, left to right.
    private func listing(_ rng: inout RNG) -> [String] {
        let order = objects.indices.sorted { boxes[$0].centerX < boxes[$1].centerX }
        var groups: [(key: ShapeCombination, members: [Int])] = []
        for i in order {
            let key = ShapeCombination(color: objects[i].color, shape: objects[i].shape)
            if let g = groups.firstIndex(where: { $0.key == key }) { groups[g].members.append(i) } else { groups.append((key, [i])) }
        }
        func phrase(_ group: (key: ShapeCombination, members: [Int]), withSize: Bool) -> String {
            let sizes = Set(group.members.map { objects[$0].size })
            let size = withSize && sizes.count == 1 ? sizes.first!.rawValue + " " : ""
            if group.members.count == 1 { return English.article(size + group.key.description) }
            return "\(English.number(group.members.count)) \(size)\(group.key.color.rawValue) \(group.key.shape.plural)"
        }
        var result: [String] = []
        for withSize in [false, true] {
            let list = English.list(groups.map { phrase($0, withSize: withSize) })
            result.append(list)
            let verb = groups[0].members.count == 1 ? "is" : "are"
            result.append("there \(verb) \(list)")
        }
        return English.unique(result)
    }

    private func counting(_ rng: inout RNG) -> [String] {
        var result: [String] = []
        let n = objects.count
        if n == 1 {
            let o = objects[0]
            result += ["one \(o.color.rawValue) \(o.shape.rawValue)", "a single \(o.color.rawValue) \(o.shape.rawValue)",
                       "a single \(description(0, .full))"]
        } else {
            result += ["\(English.number(n)) shapes", "there are \(English.number(n)) shapes"]
            let i = rng.int(below: n)
            let others = n - 1
            result.append("\(English.article(description(i, randomLevel(&rng)))) and \(English.number(others)) other \(others == 1 ? "shape" : "shapes")")
        }
        // Exact counts of colour–shape pairs, shapes and colours that occur more than once.
        var byPair: [ShapeCombination: Int] = [:], byShape: [ShapeKind: Int] = [:], byColor: [ShapeColor: Int] = [:]
        for o in objects {
            byPair[ShapeCombination(color: o.color, shape: o.shape), default: 0] += 1
            byShape[o.shape, default: 0] += 1
            byColor[o.color, default: 0] += 1
        }
        for (pair, k) in byPair.sorted(by: { $0.key.description < $1.key.description }) where k > 1 {
            result += ["\(English.number(k)) \(pair.color.rawValue) \(pair.shape.plural)",
                       "there are \(English.number(k)) \(pair.color.rawValue) \(pair.shape.plural)"]
        }
        for (shape, k) in byShape.sorted(by: { $0.key.rawValue < $1.key.rawValue }) where k > 1 {
            result.append("\(English.number(k)) \(shape.plural)")
        }
        for (color, k) in byColor.sorted(by: { $0.key.rawValue < $1.key.rawValue }) where k > 1 {
            result.append("\(English.number(k)) \(color.rawValue) shapes")
        }
        return English.unique(result)
    }

    private func relations(_ rng: inout RNG) -> [String] {
        var result: [String] = []
        for i in objects.indices {
            for j in objects.indices where i != j {
                guard let relation = ShapeRelation.between(boxes[i], boxes[j]) else { continue }
                let x = description(i, randomLevel(&rng)), y = description(j, randomLevel(&rng))
                result.append("\(English.article(x)) \(relation.phrase) \(English.article(y))")
                result.append("there is \(English.article(x)) \(relation.phrase) \(English.article(y))")
                let xi = description(i, .colorShape), yj = description(j, .colorShape)
                if isUnique(i, .colorShape) && isUnique(j, .colorShape) {
                    result.append("the \(xi) is \(relation.phrase) the \(yj)")
                }
            }
        }
        return English.unique(result)
    }

    private func positions(_ rng: inout RNG) -> [String] {
        var result: [String] = []
        for i in objects.indices {
            let place = ShapeRelation.region(of: boxes[i], canvas: scene.canvas)
            result.append("\(English.article(description(i, randomLevel(&rng)))) \(place)")
            if isUnique(i, .colorShape) { result.append("the \(description(i, .colorShape)) is \(place)") }
        }
        return English.unique(result)
    }

    private func descriptions(_ rng: inout RNG) -> [String] {
        guard objects.count == 1 else { return [] }
        let o = objects[0]
        return [
            English.article(description(0, .full)), English.article(description(0, .colorShape)),
            "there is \(English.article(description(0, .full)))", "a \(o.shape.rawValue) that is \(o.color.rawValue)",
            "\(English.article(description(0, .sizeShape))) that is \(o.color.rawValue)",
        ]
    }

    // MARK: - Words

    enum Level { case full, colorShape, sizeShape }

    private func description(_ i: Int, _ level: Level) -> String {
        let o = objects[i]
        switch level {
        case .full: return "\(o.size.rawValue) \(o.color.rawValue) \(o.shape.rawValue)"
        case .colorShape: return "\(o.color.rawValue) \(o.shape.rawValue)"
        case .sizeShape: return "\(o.size.rawValue) \(o.shape.rawValue)"
        }
    }

    /// Mostly colour and shape; sometimes with size; occasionally size and shape only.
    private func randomLevel(_ rng: inout RNG) -> Level {
        let u = rng.uniform()
        return u < 0.35 ? .full : u < 0.9 ? .colorShape : .sizeShape
    }

    /// True when no other object shares the attributes `level` names.
    private func isUnique(_ i: Int, _ level: Level) -> Bool {
        !objects.indices.contains { j in j != i && description(j, level) == description(i, level) }
    }
}

/// Spatial relations and canvas regions, computed from boxes (y grows downwards).
enum ShapeRelation: String {
    case leftOf, rightOf, above, below

    var phrase: String {
        switch self {
        case .leftOf: return "to the left of"
        case .rightOf: return "to the right of"
        case .above: return "above"
        case .below: return "below"
        }
    }

    /// How `a` stands to `b`: along the axis where their centres differ most, and only when the boxes
    /// do not overlap along that axis; nil otherwise.
    static func between(_ a: BoundingBox, _ b: BoundingBox) -> ShapeRelation? {
        let dx = b.centerX - a.centerX, dy = b.centerY - a.centerY
        if abs(dx) > abs(dy) {
            if a.x + a.width <= b.x { return .leftOf }
            if b.x + b.width <= a.x { return .rightOf }
        } else {
            if a.y + a.height <= b.y { return .above }
            if b.y + b.height <= a.y { return .below }
        }
        return nil
    }

    /// "in the top left corner", "at the bottom", "in the center"...: the third of the canvas, per
    /// axis, holding the box centre.
    static func region(of box: BoundingBox, canvas: Int) -> String {
        let third = Double(canvas) / 3
        let column = box.centerX < third ? "left" : box.centerX > 2 * third ? "right" : "center"
        let row = box.centerY < third ? "top" : box.centerY > 2 * third ? "bottom" : "middle"
        switch (row, column) {
        case ("middle", "center"): return "in the center"
        case ("middle", _): return "on the \(column)"
        case (_, "center"): return "at the \(row)"
        default: return "in the \(row) \(column) corner"
        }
    }
}

// MARK: - Small English helpers

/// Articles, number words and lists for the caption templates.
enum English {
    /// "a red circle", "an orange star".
    static func article(_ phrase: String) -> String {
        guard let first = phrase.first else { return phrase }
        return ("aeiou".contains(first) ? "an " : "a ") + phrase
    }

    static func number(_ n: Int) -> String {
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"][min(n, 9)]
    }

    /// "a", "a and b", "a, b and c".
    static func list(_ items: [String]) -> String {
        guard items.count > 1 else { return items.first ?? "" }
        return items.dropLast().joined(separator: ", ") + " and " + items.last!
    }

    /// The items without repeats, first occurrences in order.
    static func unique(_ items: [String]) -> [String] {
        var seen = Set<String>()
        return items.filter { seen.insert($0).inserted }
    }
}

extension SceneCaptioner {
    /// Fisher–Yates with the project RNG (stable across Swift versions, unlike `shuffle(using:)`).
    static func shuffle<T>(_ items: inout [T], _ rng: inout RNG) {
        var i = items.count - 1
        while i > 0 {
            items.swapAt(i, rng.int(below: i + 1))
            i -= 1
        }
    }
}
