#if canImport(Glibc)
import Glibc
#endif
import CSystemd
import Logging
import ServiceLifecycle

/// Reports the daemon's state to systemd (`sd_notify`) and keeps descriptors in its fd store.
///
/// Every call is a no-op when the service manager did not set `NOTIFY_SOCKET` (a daemon started by
/// hand or in tests), so callers never need to ask whether systemd is there.
package struct SystemdNotifier: Sendable {
    /// The logger failures to notify are reported to (at debug level: they never stop the daemon).
    let logger: Logger

    /// Creates a notifier logging to `logger`.
    package init(logger: Logger) {
        self.logger = logger
    }

    /// Whether a service manager listens for notifications (`NOTIFY_SOCKET` is set).
    package var isConnected: Bool { getenv("NOTIFY_SOCKET") != nil }

    /// Tells systemd the daemon is serving, with a one-line status (`READY=1`, `STATUS=…`).
    package func ready(status: String) {
        send(SystemdNotification.ready(status: status))
    }

    /// Updates the one-line status shown by `systemctl status` (`STATUS=…`).
    package func status(_ text: String) {
        send(SystemdNotification.status(text))
    }

    /// Tells systemd a reload began (`RELOADING=1`, `MONOTONIC_USEC=…`); follow it with `ready(status:)`.
    package func reloading() {
        send(SystemdNotification.reloading(monotonicMicroseconds: Self.monotonicMicroseconds()))
    }

    /// Tells systemd the daemon is shutting down (`STOPPING=1`).
    package func stopping() {
        send(SystemdNotification.stopping)
    }

    /// Pings the watchdog (`WATCHDOG=1`).
    package func watchdogPing() {
        send(SystemdNotification.watchdog)
    }

    /// Pushes descriptors into the service's fd store under `name` (`FDSTORE=1`, `FDNAME=name`).
    ///
    /// systemd keeps them open across restarts and passes them back through `LISTEN_FDS` with that name.
    package func store(_ descriptors: [Int32], name: String) {
        guard isConnected, !descriptors.isEmpty else { return }
        let message = SystemdNotification.fdStore(name: name)
        let result = descriptors.withUnsafeBufferPointer { buffer in
            sd_pid_notify_with_fds(0, 0, message, buffer.baseAddress, UInt32(buffer.count))
        }
        if result < 0 {
            logger.warning("cannot push descriptors to the systemd fd store", metadata: [
                "fd.name": "\(name)", "error": "\(String(cString: strerror(-result)))",
            ])
        } else {
            logger.debug("pushed descriptors to the systemd fd store", metadata: ["fd.name": "\(name)", "fd.count": "\(descriptors.count)"])
        }
    }

    /// Removes every descriptor stored under `name` from the fd store (`FDSTOREREMOVE=1`).
    package func removeStored(name: String) {
        send(SystemdNotification.fdStoreRemove(name: name))
    }

    /// The watchdog interval systemd expects pings within (`WATCHDOG_USEC` for this pid), or `nil` when it is off.
    package static func watchdogInterval() -> Duration? {
        var microseconds: UInt64 = 0
        guard sd_watchdog_enabled(0, &microseconds) > 0, microseconds > 0 else { return nil }
        return .microseconds(Int64(clamping: microseconds))
    }

    private func send(_ message: String) {
        guard isConnected else { return }
        let result = sd_notify(0, message)
        if result < 0 {
            logger.debug("sd_notify failed", metadata: ["message": "\(message)", "error": "\(String(cString: strerror(-result)))"])
        }
    }

    private static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
    }
}

/// The text of the notifications the daemon sends (newline-separated `KEY=value` assignments).
package enum SystemdNotification {
    /// `READY=1` with a status line.
    package static func ready(status: String) -> String { "READY=1\n" + self.status(status) }

    /// `STATUS=…`, with newlines (which would start a new assignment) replaced by spaces.
    package static func status(_ text: String) -> String {
        "STATUS=" + String(text.map { $0.isNewline ? " " : $0 })
    }

    /// `RELOADING=1` with the monotonic timestamp systemd 253+ uses for `Type=notify-reload`.
    package static func reloading(monotonicMicroseconds: UInt64) -> String {
        "RELOADING=1\nMONOTONIC_USEC=\(monotonicMicroseconds)"
    }

    /// `STOPPING=1`.
    package static let stopping = "STOPPING=1"

    /// `WATCHDOG=1`.
    package static let watchdog = "WATCHDOG=1"

    /// `FDSTORE=1` for descriptors named `name`.
    package static func fdStore(name: String) -> String { "FDSTORE=1\nFDNAME=\(name)" }

    /// `FDSTOREREMOVE=1` for the descriptors named `name`.
    package static func fdStoreRemove(name: String) -> String { "FDSTOREREMOVE=1\nFDNAME=\(name)" }
}

/// Pings systemd's watchdog at half its interval while the daemon's actor answers.
///
/// Runs in the daemon's service group, listed first so that graceful shutdown reaches it last: the
/// pings go on while the tenants drain. A daemon whose actor no longer answers stops pinging, and
/// systemd restarts it.
struct SystemdWatchdogService: Service {
    let interval: Duration
    let daemon: SystemDaemon
    let notifier: SystemdNotifier

    func run() async throws {
        notifier.watchdogPing()
        // The sleep ends with an error on graceful shutdown or cancellation, which ends the pings.
        try? await cancelWhenGracefulShutdown { () async throws -> Void in
            while true {
                try await Task.sleep(for: interval / 2)
                await daemon.heartbeat()
                notifier.watchdogPing()
            }
        }
    }
}
