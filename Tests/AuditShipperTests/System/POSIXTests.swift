import Foundation
import Testing

@testable import AuditShipper

/// The file layer's refusals, which every file of the daemon's relies on.
@Suite struct POSIXTests {
    func directory() throws -> String {
        let path = NSTemporaryDirectory() + "posix-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func noFileIsOpenedThroughALinkOrAsADirectory() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "x".write(toFile: dir + "/target", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: dir + "/link", withDestinationPath: dir + "/target")
        #expect(POSIX.readRegular(dir + "/link") == .failure(.symbolicLink))
        #expect(POSIX.openRegular(dir + "/link", O_WRONLY | O_CREAT, mode: 0o600) == .failure(.symbolicLink))
        #expect(POSIX.readRegular(dir) == .failure(.notRegular))
        #expect(POSIX.readRegular(dir + "/none") == .failure(.missing))
        #expect(POSIX.readRegular(dir + "/target") == .success(Array("x".utf8)))
    }

    @Test func everyByteIsWrittenAndReadBack() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bytes = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let fd = try POSIX.openRegular(dir + "/file", O_WRONLY | O_CREAT | O_EXCL, mode: 0o600).get()
        let (written, failure) = POSIX.writeAll(bytes, to: fd)
        close(fd)
        #expect(written == bytes.count && failure == nil)
        #expect(try POSIX.readRegular(dir + "/file").get() == bytes)
    }

    @Test func aUnixSocketPathTooLongIsRefusedNotCut() throws {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        // sun_path holds 108 bytes with the NUL: 107 would fit, and 120 used to be cut to 107.
        let path = "/tmp/" + String(repeating: "s", count: 115)
        #expect(POSIX.connect(fd, unixPath: path) == -1)
        #expect(errno == ENAMETOOLONG)
        #expect(POSIX.connect(fd, unixPath: "/nonexistent/socket") == -1)
        #expect(errno == ENOENT)
        #expect(POSIX.bind(fd, unixPath: path) == -1)
        #expect(errno == ENAMETOOLONG)
        #expect(access(String(path.prefix(107)), F_OK) != 0, "no socket bound at the path cut short")
    }

    @Test func theChecksumIsFNV1a() {
        // The published FNV-1a test vectors.
        #expect(FNV1a.hash64([]) == 0xcbf2_9ce4_8422_2325)
        #expect(FNV1a.hash64(Array("a".utf8)) == 0xaf63_dc4c_8601_ec8c)
        #expect(FNV1a.hash32(Array("a".utf8)) == 0xe40c_292c)
        #expect(FNV1a.hash32(Array("foobar".utf8)) == 0xbf9c_f968)
    }
}
