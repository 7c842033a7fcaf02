/// The field paths the rules read, as a tree of their parts, so that reading an event's JSON
/// builds only what lies on them (`EventFields`) and skips the rest: a rule that reads
/// `invite.sent.data.role` needs none of the actor, the project or a large payload's other
/// members.
struct FieldPaths: Sendable {
    var children: [String: FieldPaths] = [:]
    /// A path ends here: the whole value is read.
    var whole = false

    /// Every member, all the way down (tests, and a rule set that reads the whole event).
    static let everything = FieldPaths(whole: true)

    init(whole: Bool = false) {
        self.whole = whole
    }

    mutating func insert(_ path: [Substring]) {
        guard let first = path.first else {
            whole = true
            return
        }
        children[String(first), default: FieldPaths()].insert(Array(path.dropFirst()))
    }

    /// What lies under the member `key`, whose dots may span several parts of a path
    /// (`"api_key.created"`); nil when no path goes there.
    func under(_ key: String) -> FieldPaths? {
        if whole { return self }
        var node = self
        for part in key.split(separator: ".", omittingEmptySubsequences: false) {
            guard let next = node.children[String(part)] else { return nil }
            if next.whole { return next }
            node = next
        }
        return node
    }
}
