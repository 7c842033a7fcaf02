import Foundation
import Logging
import Testing

@testable import AuditShipper

#if canImport(Glibc)
    import Glibc
#endif

/// What every sink promises the cycle (`Sink`'s contract), each against a real destination of
/// its own on this machine: it takes a batch whole and in order; once its destination is
/// gone it fails with a `SinkError` that names it (and never claims the batch); and it says
/// which events of an unrecorded batch its destination holds when it can tell, or nothing
/// when it cannot. The journal and the network transports, which need a journald or a
/// collector, run the same promises in IntegrationTests.
@Suite struct SinkContractTests {
    /// A sink and its destination: what the destination holds (event ids, in order), and how
    /// to take it away.
    final class Destination: @unchecked Sendable {
        let sink: any Sink
        let held: () async throws -> [String]
        let remove: () throws -> Void
        /// A sink built anew on the same destination, as the next process would build it.
        let again: () -> any Sink
        let directory: String

        init(
            directory: String, sink: any Sink, again: @escaping () -> any Sink,
            held: @escaping () async throws -> [String],
            remove: @escaping () throws -> Void
        ) {
            self.directory = directory
            self.sink = sink
            self.again = again
            self.held = held
            self.remove = remove
        }

        var removed = false

        /// Takes the destination away, once (a second close could close another's descriptor).
        func takeAway() throws {
            guard !removed else { return }
            removed = true
            try remove()
        }

        deinit {
            try? takeAway()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    enum Kind: String, CaseIterable, CustomTestStringConvertible {
        case stdout, file, syslogUnix = "syslog unix://"
        var testDescription: String { rawValue }
    }

    static func ids(in text: String) -> [String] {
        text.split(separator: "\n").compactMap { line in
            line.range(of: #"audit_log-[0-9]+"#, options: .regularExpression).map { String(line[$0]) }
        }
    }

    func destination(_ kind: Kind) throws -> Destination {
        let directory = NSTemporaryDirectory() + "contract-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        switch kind {
        case .stdout:
            // A pipe as stdout would be: gone is its reader closed (EPIPE, SIGPIPE ignored as
            // the daemon does). A file descriptor output is the sink's only kind of output.
            var fds: [Int32] = [0, 0]
            try #require(pipe(&fds) == 0)
            signal(SIGPIPE, SIG_IGN)
            _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
            let read = fds[0]
            let collected = Locked<[UInt8]>([])
            func drain() {
                var buffer = [UInt8](repeating: 0, count: 1 << 16)
                while case let n = Glibc.read(read, &buffer, buffer.count), n > 0 {
                    collected.withLock { $0 += buffer[..<n] }
                }
            }
            let sink = StdoutSink(output: FileDescriptorOutput(fd: fds[1], label: "stdout"))
            return Destination(
                directory: directory, sink: sink, again: { sink },
                held: {
                    drain()
                    return Self.ids(in: String(decoding: collected.withLock { $0 }, as: UTF8.self))
                },
                remove: { close(read) })
        case .file:
            let file = directory + "/audit.json"
            let mark = directory + "/state.json.mark.file"
            func make() -> any Sink {
                FileSink(settings: Configuration.FileSettings(path: file), markPath: mark, logger: nil)
            }
            return Destination(
                directory: directory, sink: make(), again: make,
                held: { Self.ids(in: (try? String(contentsOfFile: file, encoding: .utf8)) ?? "") },
                remove: { try? FileManager.default.removeItem(atPath: directory) })
        case .syslogUnix:
            let path = directory + "/log.sock"
            let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            try #require(POSIX.bind(fd, unixPath: path) == 0)
            // Read as a collector does, all along: a datagram socket's queue holds only a few.
            var wait = timeval(tv_sec: 0, tv_usec: 20_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
            let received = Locked<[String]>([])
            let stopped = Locked(false)
            let reader = Thread {
                var buffer = [UInt8](repeating: 0, count: 1 << 17)
                while !stopped.withLock({ $0 }) {
                    let n = recv(fd, &buffer, buffer.count, 0)
                    if n > 0 { received.withLock { $0 += Self.ids(in: String(decoding: buffer[..<n], as: UTF8.self)) } }
                }
                close(fd)
            }
            reader.start()
            var settings = Configuration.SyslogSettings()
            settings.url = "unix://\(path)"
            settings.transport = .unix(path: path)
            let sink = try SyslogSink(settings: settings, name: "syslog", logger: Logger.silent)
            return Destination(
                directory: directory, sink: sink, again: { sink },
                held: {
                    // Until the reader has seen nothing new for a while: what was sent is in.
                    var count = -1
                    while count != received.withLock({ $0.count }) {
                        count = received.withLock { $0.count }
                        try await Task.sleep(for: .milliseconds(100))
                    }
                    return received.withLock { $0 }
                },
                remove: {
                    stopped.withLock { $0 = true }
                    try? FileManager.default.removeItem(atPath: path)
                })
        }
    }

    @Test(arguments: Kind.allCases)
    func aBatchIsTakenWholeAndInOrder(kind: Kind) async throws {
        let destination = try destination(kind)
        let events = try FileSinkTests.events(0..<50)
        try await destination.sink.check()
        try await destination.sink.deliver(Array(events[..<20]))
        try await destination.sink.deliver(Array(events[20...]))
        #expect(try await destination.held() == events.map(\.id))
    }

    @Test(arguments: Kind.allCases)
    func aDestinationGoneFailsNamingTheSink(kind: Kind) async throws {
        let destination = try destination(kind)
        let events = try FileSinkTests.events(0..<5)
        try await destination.sink.deliver(events)
        _ = try await destination.held()
        try destination.takeAway()
        do {
            try await destination.sink.check()
            try await destination.sink.deliver(try FileSinkTests.events(5..<10))
            Issue.record("\(kind): a batch was taken with the destination gone")
        } catch let error as SinkError {
            #expect("\(error)".contains("sink \(destination.sink.name)"), "\(error)")
        }
    }

    @Test(arguments: Kind.allCases)
    func receiptsNameWhatTheDestinationHoldsOrNothing(kind: Kind) async throws {
        let destination = try destination(kind)
        let events = try FileSinkTests.events(0..<7)
        try await destination.sink.deliver(events)
        // The position was never written: a new process asks what the destination holds.
        let next = destination.again()
        let receipts = try await next.receipts()
        switch kind {
        case .file:
            #expect(receipts.map(\.id) == events.map(\.id))
            #expect(receipts.map(\.effectiveAt) == events.map(\.effectiveAt))
            try await next.positionRecorded()
            #expect(try await destination.again().receipts().isEmpty, "recorded: nothing is held back")
        case .stdout, .syslogUnix:
            #expect(receipts.isEmpty, "it cannot tell what its destination holds")
        }
    }
}
