import AuditShipper
import Foundation
import Testing

@Suite struct StdoutSinkTests {
    static let events = [
        AuditEvent.make(id: "a", type: "t", effectiveAt: 1, json: Array(#"{"id":"a","x":"line\nbreak"}"#.utf8)),
        AuditEvent.make(id: "b", type: "t", effectiveAt: 2, json: Array(#"{"id":"b","x":"Zoë"}"#.utf8)),
    ]

    @Test func writesOneEventPerLine() async throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let sink = StdoutSink(output: FileDescriptorOutput(fd: fds[1], label: "pipe"))
        try await sink.check()
        try await sink.deliver(Self.events)
        close(fds[1])
        let data = FileHandle(fileDescriptor: fds[0], closeOnDealloc: true).readDataToEndOfFile()
        #expect(
            String(decoding: data, as: UTF8.self)
                == "{\"id\":\"a\",\"x\":\"line\\nbreak\"}\n{\"id\":\"b\",\"x\":\"Zoë\"}\n")
    }

    @Test func annotatedLinesCarryTheRulesAndPlainOnesStayAsReceived() async throws {
        let marked = Self.events[0].marked(Detection(rules: ["r1", "r2"], level: .critical))
        for annotate in [true, false] {
            var fds: [Int32] = [0, 0]
            #expect(pipe(&fds) == 0)
            let sink = StdoutSink(annotate: annotate, output: FileDescriptorOutput(fd: fds[1], label: "pipe"))
            try await sink.deliver([marked, Self.events[1]])
            close(fds[1])
            let data = FileHandle(fileDescriptor: fds[0], closeOnDealloc: true).readDataToEndOfFile()
            let first =
                annotate
                ? #"{"id":"a","x":"line\nbreak","openai_auditd":{"rules":["r1","r2"],"level":"critical"}}"#
                : #"{"id":"a","x":"line\nbreak"}"#
            #expect(String(decoding: data, as: UTF8.self) == first + "\n{\"id\":\"b\",\"x\":\"Zoë\"}\n")
        }
    }

    @Test func aClosedReaderIsAnErrorNotASilentLoss() async throws {
        signal(SIGPIPE, SIG_IGN)
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        close(fds[0])
        defer { close(fds[1]) }
        let sink = StdoutSink(output: FileDescriptorOutput(fd: fds[1], label: "stdout"))
        await #expect {
            try await sink.deliver(Self.events)
        } throws: { error in
            "\(error)" == "sink stdout is closed: the reader went away (EPIPE)"
        }
    }

    @Test func aClosedDescriptorFailsTheCheck() async throws {
        let sink = StdoutSink(output: FileDescriptorOutput(fd: 987, label: "stdout"))
        await #expect(throws: SinkError.self) { try await sink.check() }
    }
}

/// A file sink reads its own lines back after a crash: an annotated one too.
@Suite struct AnnotatedReadBackTests {
    @Test func anAnnotatedLineIsReadBackAsItsEvent() {
        let event = AuditEvent.make(
            id: "audit_log-9", type: "scim.disabled", effectiveAt: 1_722_471_046,
            json: Array(#"{"id":"audit_log-9","type":"scim.disabled","effective_at":1722471046}"#.utf8)
        ).marked(Detection(rules: ["openai-scim-disabled"], level: .high))
        let line = EventFormat.json.lines([event], origin: SyslogOrigin(), annotated: true).dropLast()
        let receipt = Array(line).withUnsafeBufferPointer { EventFormat.json.receipt(ofLine: $0) }
        #expect(receipt?.id == "audit_log-9" && receipt?.effectiveAt == 1_722_471_046)
    }
}
