#if canImport(Glibc)
    import Glibc
#endif

/// Where the file sink's file stood when the sink's position was last written: every line
/// after `offset` in the file `device`/`inode`, and every line of a file the sink opened after
/// it, was written since. After a crash only those lines are read back (`FileSink.receipts`).
///
/// Written after the state (which is fsynced) and not synced itself: after a crash of the
/// machine it can only be older than the state, which costs reading more, never missing a line.
/// Missing or unreadable, the sink reads back the end of the file instead (`readBackLimit`).
struct FileMark: Equatable {
    var device: UInt64
    var inode: UInt64
    var offset: Int64
    /// A checksum of the last line before `offset` (its last `tailLength` bytes at most). A
    /// file truncated and written again past the offset (copytruncate) has the same inode and
    /// may have the same size; that line, which names its event, tells the two apart, so the
    /// new lines are read back from the file's start.
    var tail: UInt64

    static let tag = "openai-auditd file mark 2"
    static let tailLength = 16 << 10
    /// Every mark is this long, so one `pwrite` at 0 replaces the last one whole.
    static let length = 128

    /// One line, padded with spaces to `length`.
    var line: [UInt8] {
        var text = "\(Self.tag) \(device) \(inode) \(offset) \(tail)"
        text += String(repeating: " ", count: max(0, Self.length - 1 - text.utf8.count))
        return Array((text + "\n").utf8)
    }

    /// The mark of `fd` (the file `device`/`inode`) at `offset`.
    init(_ fd: Int32, device: UInt64, inode: UInt64, offset: Int64) {
        self.device = device
        self.inode = inode
        self.offset = offset
        tail = Self.hash(fd, before: offset) ?? 0
    }

    /// The mark a line of `line` form says, nil for anything else (a torn or foreign file).
    init?(line: [UInt8]) {
        let words = String(decoding: line, as: UTF8.self).split(whereSeparator: \.isWhitespace)
        let tag = Self.tag.split(separator: " ")
        guard words.count == tag.count + 4, Array(words.prefix(tag.count)) == tag,
            let device = UInt64(words[tag.count]), let inode = UInt64(words[tag.count + 1]),
            let offset = Int64(words[tag.count + 2]), offset >= 0, let tail = UInt64(words[tag.count + 3])
        else { return nil }
        self.device = device
        self.inode = inode
        self.offset = offset
        self.tail = tail
    }

    /// Does `path` (the file this mark names) still hold, before `offset`, the bytes it held?
    func matches(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, Int64(info.st_size) >= offset else { return false }
        return Self.hash(fd, before: offset) == tail
    }

    static func hash(_ fd: Int32, before offset: Int64) -> UInt64? {
        let start = max(0, offset - Int64(tailLength))
        var bytes = [UInt8](repeating: 0, count: Int(offset - start))
        let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(start)) }
        guard n == bytes.count else { return nil }
        let line = bytes.dropLast().lastIndex(of: 0x0A).map { bytes[($0 + 1)...] } ?? bytes[...]
        return StateUpdateLog.checksum(line)
    }

    /// Is `info` the file this mark is about?
    func names(_ info: stat) -> Bool {
        UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
    }
}
