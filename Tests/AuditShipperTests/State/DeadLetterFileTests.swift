import AuditShipper
import Foundation
import Testing

@Suite struct DeadLetterFileTests {
    let directory: TemporaryDirectory
    init() throws { directory = try TemporaryDirectory() }

    func item(_ json: String, id: String? = "p") -> UnreadableItem {
        UnreadableItem(index: 0, id: id, reason: "its effective_at is not a number", json: Array(json.utf8))
    }

    /// One line per item, whatever its bytes hold: quotes, backslashes and control characters
    /// escaped in `item`, so a line break inside a string cannot split the file's lines.
    @Test func eachItemIsOneLineThatGivesItsBytesBack() throws {
        let path = directory.path + "/state.json.dead-letters"
        let file = DeadLetterFile(path: path)
        let json = #"{"id":"p","note":"a \"quoted\" \\ path","effective_at":"x"}"#
        #expect(try file.setAside(item(json), now: 1_800_000_000))
        #expect(try file.setAside(item(#"{"id":"q\u2028","effective_at":[]}"#, id: nil), now: 1_800_000_001))
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 3 && lines[2].isEmpty, "two lines, each ended")
        let first = try JSONDecoder().decode([String: String?].self, from: Data(lines[0].utf8))
        #expect(first["item"] == json)
        #expect(first["id"] == "p")
        #expect(first["set_aside_at"] == "2027-01-15T08:00:00Z")
        let second = try JSONDecoder().decode([String: String?].self, from: Data(lines[1].utf8))
        #expect(second["id"] == .some(nil))
    }

    @Test func aSymbolicLinkIsRefused() throws {
        let target = directory.path + "/elsewhere"
        #expect(FileManager.default.createFile(atPath: target, contents: Data()))
        let path = directory.path + "/state.json.dead-letters"
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: target)
        #expect {
            _ = try DeadLetterFile(path: path).setAside(item("{}"), now: 0)
        } throws: { error in
            "\(error)".contains("symbolic link")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: target)).isEmpty)
    }

    /// `replay` keeps no state: nothing is written, but an item is still new only once.
    @Test func withoutAPathNothingIsWritten() throws {
        let file = DeadLetterFile(path: nil)
        #expect(try file.setAside(item("{}"), now: 0))
        #expect(try !file.setAside(item("{}"), now: 1))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }
}
