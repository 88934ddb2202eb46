#if canImport(Glibc)
import Glibc
#endif
import Logging
import TenantGateway

/// A swift-log handler that writes one line per message to standard error, rendering metadata only when a message is logged.
///
/// swift-log's `StreamLogHandler` re-renders its metadata on every metadata change, which the gateway
/// does several times per request; this handler keeps the dictionary as is and formats it lazily,
/// so loggers that are decorated but never used cost nothing.
package struct LineLogHandler: LogHandler {
    /// The logger's label, printed with each line.
    package let label: String
    /// The minimum level printed.
    package var logLevel: Logger.Level
    /// Metadata attached to every message of this logger.
    package var metadata: Logger.Metadata = [:]

    /// Creates a handler for a label at a level.
    package init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    /// Reads or writes one metadata entry.
    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Formats and writes one line: time, level, label, sorted `key=value` metadata, then the message.
    package func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        var line = Self.timestamp()
        line += " \(event.level) \(label):"
        for key in merged.keys.sorted() { line += " \(key)=\(merged[key]!)" }
        line += " \(event.message)\n"
        var bytes = Array(line.utf8)[...]
        while !bytes.isEmpty {
            let count = bytes.withUnsafeBytes { Glibc.write(STDERR_FILENO, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return
            }
            bytes = bytes.dropFirst(count)
        }
    }

    /// The current UTC time as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    static func timestamp() -> String {
        WallClock.iso8601(milliseconds: WallClock.nowMilliseconds())
    }
}

/// Process-wide logging set-up for the daemon.
package enum RosettaLogging {
    /// Installs the handler for every logger, at the level named by `ROSETTAD_LOG_LEVEL` (default `info`):
    /// `JournalLogHandler` under systemd's journal (or with `ROSETTAD_LOG=journal`), else `LineLogHandler`.
    ///
    /// Records go through libsystemd's `sd_journal_sendv`; `ROSETTAD_JOURNAL_SOCKET` names another journal socket
    /// that gets journald's native protocol directly (for tests). Metrics are bootstrapped here too,
    /// so that every recording point has its backend before the first request.
    package static func bootstrap(environment: [String: String]) {
        let level = environment["ROSETTAD_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        RosettaMetricsSystem.bootstrap()
        let destination = LogDestination.choose(environment: environment, standardError: LogDestination.standardErrorIdentity())
        if destination == .journal, let path = environment["ROSETTAD_JOURNAL_SOCKET"], let socket = JournalSocket(path: path) {
            LoggingSystem.bootstrap { label in JournalLogHandler(label: label, level: level, socket: socket) }
        } else if destination == .journal {
            LoggingSystem.bootstrap { label in JournalLogHandler(label: label, level: level, sink: .libsystemd) }
        } else {
            LoggingSystem.bootstrap { label in LineLogHandler(label: label, level: level) }
        }
    }
}
