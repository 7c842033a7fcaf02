import Foundation

/// How the daemon's own diagnostics are written to stderr (`log.format`).
public enum LogFormat: String, Sendable, CaseIterable {
    /// `journal` when stderr is the journal's stream (systemd sets `JOURNAL_STREAM`), else `text`.
    case auto
    /// A timestamp, the level and the message with its metadata: for a terminal or a file.
    case text
    /// One JSON object per line (time, level, message, metadata): for container platforms.
    case json
    /// The sd-daemon priority prefix (`<3>`) and no timestamp: journald stamps and files the
    /// line at that priority, so `journalctl -p warning` finds the daemon's warnings.
    case journal

    /// `auto` made concrete for this process: `journal` if `JOURNAL_STREAM` names stderr's
    /// device and inode (sd_journal_stream_fd's contract), else `text`.
    public func resolved(environment: [String: String], descriptor: Int32 = 2) -> LogFormat {
        guard self == .auto else { return self }
        guard let stream = environment["JOURNAL_STREAM"] else { return .text }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return .text }
        return stream == "\(info.st_dev):\(info.st_ino)" ? .journal : .text
    }
}
