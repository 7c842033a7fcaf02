import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The sink's HEC channel: a GUID Splunk files its acknowledgements under, kept beside the
/// state (`<state file>.channel.<sink>`) so that a new process asks about what the last one
/// sent on the same channel. Made once and synced before it is used; one that cannot be read
/// (a crash while it was first written) is replaced, as no request was sent on it.
enum HECChannel {
    static func load(path: String?) throws(StateError) -> String {
        guard let path else { return UUID().uuidString.lowercased() }
        if let bytes = try StateStore.readRegular(path, what: "HEC channel file") {
            let text = String(decoding: bytes, as: UTF8.self).trimmingSpaces
            if UUID(uuidString: text) != nil { return text }
        }
        let channel = UUID().uuidString.lowercased()
        let owner = POSIX.foreignOwner(of: (path as NSString).deletingLastPathComponent)
        let fd = try StateStore.openRegular(
            path, O_WRONLY | O_CREAT | O_TRUNC, mode: 0o600, owner: owner, what: "HEC channel file")
        defer { close(fd) }
        try StateStore.writeAll(Array((channel + "\n").utf8), to: fd, path: path)
        guard fsync(fd) == 0 else {
            throw .unwritable(path: path, reason: "cannot sync the HEC channel file: \(POSIX.errnoText())")
        }
        return channel
    }
}
