import Foundation
import Synchronization

/// One of the test tools in `scripts/` (`reset-relay.py`, `fake-relp.py`, `fake-splunk-hec.py`,
/// `fake-elasticsearch.py`) as a process: it
/// prints the port it listens on first, then lines the test may read.
final class ToolProcess: @unchecked Sendable {
    let process = Process()
    let port: Int
    let output = Pipe()
    /// What it printed after its port.
    let lines = Mutex<[String]>([])

    init(_ script: String, _ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [DaemonHarness.root + "/scripts/" + script] + arguments
        process.standardOutput = output
        try process.run()
        var text = ""
        while !text.contains("\n") {
            let data = output.fileHandleForReading.availableData
            guard !data.isEmpty else { throw HarnessError("\(script) ended before giving its port") }
            text += String(decoding: data, as: UTF8.self)
        }
        guard let port = Int(text.prefix { $0 != "\n" }) else { throw HarnessError("\(script) said \(text)") }
        self.port = port
        lines.withLock { $0 = text.split(separator: "\n").dropFirst().map(String.init) }
        output.fileHandleForReading.readabilityHandler = { [self] handle in
            let more = String(decoding: handle.availableData, as: UTF8.self)
            lines.withLock { $0 += more.split(separator: "\n").map(String.init) }
        }
    }

    /// Ends the process it started (by its PID).
    func stop() {
        output.fileHandleForReading.readabilityHandler = nil
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}
