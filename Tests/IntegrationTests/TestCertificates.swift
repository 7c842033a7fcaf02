import Foundation

/// Certificates made with Debian's openssl for the TLS tests: throwaway CAs and the
/// certificates they sign, in a test's own directory.
enum TestCertificates {
    static let openssl = "/usr/bin/openssl"

    /// Runs `tool` in `directory`; its stderr is in the error when it fails.
    static func run(_ tool: String, _ arguments: [String], in directory: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let errors = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        try process.run()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw HarnessError(
                "\(tool) \(arguments.joined(separator: " ")) failed: \(String(decoding: message, as: UTF8.self))")
        }
    }

    /// A self-signed CA: `<name>.pem` and `<name>.key`.
    static func makeCA(_ name: String, in directory: String) throws {
        try run(
            openssl,
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", "\(name).key", "-out",
                "\(name).pem", "-subj", "/CN=openai-auditd test \(name)",
            ], in: directory)
    }

    /// `<name>.pem` and `<name>.key` for `subject`, signed by the CA `ca`, with
    /// `subjectAltName` (`DNS:localhost`, `IP:127.0.0.1`) when given.
    static func issue(
        _ name: String, subject: String, altNames: String? = nil, by ca: String = "ca", in directory: String
    ) throws {
        try run(
            openssl,
            [
                "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(name).key", "-out", "\(name).csr", "-subj",
                subject,
            ],
            in: directory)
        var extensions: [String] = []
        if let altNames {
            try "subjectAltName=\(altNames)\n".write(
                toFile: directory + "/\(name).ext", atomically: true, encoding: .utf8)
            extensions = ["-extfile", "\(name).ext"]
        }
        try run(
            openssl,
            [
                "x509", "-req", "-in", "\(name).csr", "-CA", "\(ca).pem", "-CAkey", "\(ca).key", "-CAcreateserial",
                "-days", "2", "-out", "\(name).pem",
            ] + extensions, in: directory)
    }
}
