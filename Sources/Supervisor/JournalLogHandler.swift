#if canImport(Glibc)
import Glibc
#endif
import CSystemd
import Logging

/// Where journal records go: libsystemd's `sd_journal_sendv` (journald's own socket; it passes records too large
/// for one datagram through a memfd), or the native protocol on a datagram socket at another path (tests).
package enum JournalSink: Sendable {
    /// libsystemd, to `/run/systemd/journal/socket`.
    case libsystemd
    /// journald's native protocol on this socket.
    case socket(JournalSocket)

    /// Sends one record's fields; `false` when journald did not take it.
    package func send(_ fields: [(name: String, value: String)]) -> Bool {
        switch self {
        case .socket(let socket):
            return socket.send(JournalFields.encode(fields))
        case .libsystemd:
            // One buffer holding every `NAME=value` (values may hold newlines: sd_journal_sendv frames them itself).
            var buffer: [UInt8] = []
            var ranges: [Range<Int>] = []
            for (name, value) in fields {
                let start = buffer.count
                buffer.append(contentsOf: name.utf8)
                buffer.append(UInt8(ascii: "="))
                buffer.append(contentsOf: value.utf8)
                ranges.append(start..<buffer.count)
            }
            return buffer.withUnsafeMutableBytes { bytes in
                var vectors = ranges.map { range in
                    iovec(iov_base: bytes.baseAddress! + range.lowerBound, iov_len: range.count)
                }
                return sd_journal_sendv(&vectors, Int32(vectors.count)) >= 0
            }
        }
    }
}

/// A datagram socket to journald speaking its native protocol (`/run/systemd/journal/socket` by default).
///
/// One unbound `AF_UNIX` datagram socket is shared by every logger; `sendto` is safe from any thread.
package final class JournalSocket: Sendable {
    /// The default journald socket.
    package static let defaultPath = "/run/systemd/journal/socket"
    /// Where the datagrams go.
    package let path: String
    private let descriptor: Int32

    /// Opens a datagram socket for `path`; `nil` when no socket can be made or the path is too long.
    package init?(path: String = JournalSocket.defaultPath) {
        guard path.utf8.count < MemoryLayout.size(ofValue: sockaddr_un().sun_path) else { return nil }
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        self.path = path
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    /// Sends one datagram; `false` when journald did not take it (no socket there, or it is full).
    package func send(_ datagram: [UInt8]) -> Bool {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { destination in
            for (offset, byte) in path.utf8.enumerated() { destination[offset] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.utf8.count + 1)
        while true {
            let sent = datagram.withUnsafeBytes { bytes in
                withUnsafePointer(to: &address) { pointer in
                    pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(descriptor, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL), $0, length)
                    }
                }
            }
            if sent >= 0 { return true }
            if errno == EINTR { continue }
            return false
        }
    }
}

/// A swift-log handler that sends each record to journald as structured fields (see `JournalFields`),
/// falling back to a plain line on standard error when journald does not take it.
package struct JournalLogHandler: LogHandler {
    /// The logger's label (`LOGGER=`).
    package let label: String
    /// `SYSLOG_IDENTIFIER=`.
    package let identifier: String
    /// The minimum level sent.
    package var logLevel: Logger.Level
    /// Metadata attached to every record of this logger.
    package var metadata: Logger.Metadata = [:]
    private let sink: JournalSink

    /// Creates a handler sending through `sink`.
    package init(label: String, level: Logger.Level, identifier: String = "rosettad", sink: JournalSink) {
        self.label = label
        self.logLevel = level
        self.identifier = identifier
        self.sink = sink
    }

    /// Creates a handler sending journald's native protocol to `socket`.
    package init(label: String, level: Logger.Level, identifier: String = "rosettad", socket: JournalSocket) {
        self.init(label: label, level: level, identifier: identifier, sink: .socket(socket))
    }

    /// Reads or writes one metadata entry.
    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Sends one record; when journald refuses it, writes it as a plain line instead.
    package func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let fields = JournalFields.fields(
            message: "\(event.message)", level: event.level, identifier: identifier, label: label, metadata: merged,
            file: event.file, function: event.function, line: event.line)
        if sink.send(fields) { return }
        var fallback = LineLogHandler(label: label, level: logLevel)
        fallback.metadata = metadata
        fallback.log(event: event)
    }
}

/// Which log output the daemon uses: journald's structured fields, or plain lines on standard error.
package enum LogDestination: String, Sendable, Equatable {
    /// Structured records to journald.
    case journal
    /// One text line per record on standard error.
    case plain

    /// The destination for an environment: `ROSETTAD_LOG=journal|plain` when set, else `journal` exactly when
    /// `JOURNAL_STREAM` names standard error's device and inode (systemd connected stderr to the journal).
    package static func choose(environment: [String: String], standardError: (device: UInt64, inode: UInt64)?) -> LogDestination {
        if let forced = environment["ROSETTAD_LOG"].flatMap(LogDestination.init(rawValue:)) { return forced }
        guard let stream = environment["JOURNAL_STREAM"], let standardError else { return .plain }
        let parts = stream.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return .plain }
        return device == standardError.device && inode == standardError.inode ? .journal : .plain
    }

    /// Standard error's device and inode, when it is open.
    package static func standardErrorIdentity() -> (device: UInt64, inode: UInt64)? {
        var status = stat()
        guard fstat(STDERR_FILENO, &status) == 0 else { return nil }
        return (UInt64(status.st_dev), UInt64(status.st_ino))
    }
}
