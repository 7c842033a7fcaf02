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
        _ name: String, subject: String, altNames: String? = nil, by ca: String = "ca",
        validity: (from: String, until: String)? = nil, in directory: String
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
        if let validity {
            // `openssl x509 -req` cannot date a certificate in the past; `openssl ca` can.
            let config = """
                [ca]
                default_ca = test
                [test]
                database = \(name).index
                new_certs_dir = .
                serial = \(name).serial
                default_md = sha256
                policy = anything
                unique_subject = no
                [anything]
                commonName = supplied

                """
            try config.write(toFile: directory + "/\(name).cnf", atomically: true, encoding: .utf8)
            try "".write(toFile: directory + "/\(name).index", atomically: true, encoding: .utf8)
            try "01\n".write(toFile: directory + "/\(name).serial", atomically: true, encoding: .utf8)
            try run(
                openssl,
                [
                    "ca", "-batch", "-config", "\(name).cnf", "-cert", "\(ca).pem", "-keyfile", "\(ca).key", "-in",
                    "\(name).csr", "-out", "\(name).pem", "-startdate", validity.from, "-enddate", validity.until,
                    "-notext",
                ] + extensions, in: directory)
            return
        }
        try run(
            openssl,
            [
                "x509", "-req", "-in", "\(name).csr", "-CA", "\(ca).pem", "-CAkey", "\(ca).key", "-CAcreateserial",
                "-days", "2", "-out", "\(name).pem",
            ] + extensions, in: directory)
    }
}
