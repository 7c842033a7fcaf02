/// The field paths the rules read, as a tree of their parts, so that reading an event's JSON
/// builds only what lies on them (`EventFields`) and skips the rest: a rule that reads
/// `invite.sent.data.role` needs none of the actor, the project or a large payload's other
/// members. Parts are kept as bytes, so a member's key is matched without making a String.
struct FieldPaths: Sendable {
    var children: [(part: [UInt8], paths: FieldPaths)] = []
    /// A path ends here: the whole value is read.
    var whole = false

    /// Every member, all the way down (tests, and a rule set that reads the whole event).
    static let everything = FieldPaths(whole: true)

    init(whole: Bool = false) {
        self.whole = whole
    }

    /// A Sigma field name as a path: its parts between dots, empty ones kept (`a..b` is not
    /// `a.b`). Rules, selections and correlations all split their fields here.
    static func path(_ field: String) -> [Substring] {
        field.split(separator: ".", omittingEmptySubsequences: false)
    }

    mutating func insert(_ path: [Substring]) {
        guard let first = path.first else {
            whole = true
            return
        }
        let part = Array(first.utf8)
        if let index = children.firstIndex(where: { $0.part == part }) {
            children[index].paths.insert(Array(path.dropFirst()))
        } else {
            var child = FieldPaths()
            child.insert(Array(path.dropFirst()))
            children.append((part, child))
        }
    }

    /// What lies under the member whose key is `key` (its UTF-8), whose dots may span several
    /// parts of a path (`"api_key.created"`); nil when no path goes there.
    func under<Key: Collection<UInt8>>(_ key: Key) -> FieldPaths? {
        if whole { return self }
        var node = self
        var rest = key[...]
        while true {
            let dot = rest.firstIndex(of: UInt8(ascii: "."))
            let part = rest[..<(dot ?? rest.endIndex)]
            guard let next = node.children.first(where: { $0.part.elementsEqual(part) })?.paths else { return nil }
            guard !next.whole, let dot else { return next }
            node = next
            rest = rest[rest.index(after: dot)...]
        }
    }
}
