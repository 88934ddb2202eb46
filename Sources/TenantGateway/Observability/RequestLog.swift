#if canImport(Glibc)
import Glibc
#endif
import Logging

/// One tenant's request log: `requests.log` (JSON lines, mode 0600) in the tenant's state directory, rotated by size
/// to `requests.log.1` … `.N`, plus the tenant's debug switch (persisted in `request-log.json`).
///
/// Appends are small single `write(2)`s made by the actor; a failing disk never fails a request: the first failure
/// is logged, records are dropped, and the file is opened again on a later append.
package actor RequestLog {
    private enum State {
        /// Not opened yet, or closed for rotation.
        case closed
        /// Open for appending; `size` is the file's current length.
        case open(descriptor: Int32, size: Int)
        /// The last open or write failed (already logged); the next append tries again.
        case failing
    }

    /// The log file's path.
    package nonisolated let path: String
    /// Rotation settings.
    package nonisolated let settings: RequestLogSettings
    private let switchPath: String
    private let logger: Logger
    private var state = State.closed
    private var debugEnabled: Bool
    /// Records appended since start, newest last, for `rosetta log --follow` (bounded).
    private var recent: [(sequence: Int, line: [UInt8])] = []
    private var sequence = 0
    private static let recentLimit = 1000

    /// Opens (lazily) `requests.log` in `directory`; the debug switch is read from `request-log.json` there.
    package init(directory: String, settings: RequestLogSettings, logger: Logger) {
        self.path = directory + "/requests.log"
        self.switchPath = directory + "/request-log.json"
        self.settings = settings
        self.logger = logger
        let saved = (try? SecretFile.read(directory + "/request-log.json")).flatMap { $0 }.flatMap { try? JSON.parse($0) }
        self.debugEnabled = saved?["debug"] == .bool(true)
    }

    deinit {
        if case .open(let descriptor, _) = state { close(descriptor) }
    }

    /// Whether the tenant's debug switch is on (bodies are logged, redacted).
    package var debug: Bool { debugEnabled }

    /// Turns the debug switch on or off and persists it.
    package func setDebug(_ enabled: Bool) throws(SecretFileError) {
        try SecretFile.write((["debug": .bool(enabled)] as JSON).bytes + [0x0A], to: switchPath)
        debugEnabled = enabled
        logger.notice("request log debug switch changed", metadata: ["request_log.debug": "\(enabled)"])
    }

    /// Appends one record, rotating first when it would take the file past `max_bytes`.
    package func append(_ record: RequestLogRecord) {
        guard settings.enabled else { return }
        let line = record.line
        sequence += 1
        recent.append((sequence, line))
        if recent.count > Self.recentLimit { recent.removeFirst(recent.count - Self.recentLimit) }
        guard let (descriptor, size) = openedForAppend() else { return }
        var (file, current) = (descriptor, size)
        if current > 0, current + line.count > settings.maxBytes {
            rotate(closing: file)
            guard let reopened = openedForAppend() else { return }
            (file, current) = reopened
        }
        let written = line.withUnsafeBytes { write(file, $0.baseAddress, $0.count) }
        if written == line.count {
            state = .open(descriptor: file, size: current + written)
        } else {
            fail("cannot write the request log", errnoCode: errno)
            close(file)
        }
    }

    /// The last `count` lines (oldest first), from `requests.log` and, when it has fewer, `requests.log.1`,
    /// and the sequence number to follow from.
    package func tail(_ count: Int) -> (lines: [[UInt8]], sequence: Int) {
        var lines = Self.lastLines(of: path, count: count)
        if lines.count < count {
            lines = Self.lastLines(of: path + ".1", count: count - lines.count) + lines
        }
        return (lines, sequence)
    }

    /// Records appended after `sequence` (at most the last 1000), and the sequence to follow from next.
    package func lines(after sequence: Int) -> (lines: [[UInt8]], sequence: Int) {
        (recent.filter { $0.sequence > sequence }.map(\.line), self.sequence)
    }

    // MARK: Files

    private func openedForAppend() -> (Int32, Int)? {
        if case .open(let descriptor, let size) = state { return (descriptor, size) }
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            fail("cannot open the request log", errnoCode: errno)
            return nil
        }
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG, status.st_uid == geteuid() else {
            close(descriptor)
            fail("the request log is not a regular file owned by the daemon's user", errnoCode: nil)
            return nil
        }
        if status.st_mode & 0o777 != 0o600 { fchmod(descriptor, 0o600) }
        if case .failing = state { logger.notice("request log writable again", metadata: ["path": "\(path)"]) }
        state = .open(descriptor: descriptor, size: Int(status.st_size))
        return (descriptor, Int(status.st_size))
    }

    private func rotate(closing descriptor: Int32) {
        close(descriptor)
        state = .closed
        if settings.keep == 0 {
            unlink(path)
            return
        }
        for index in stride(from: settings.keep - 1, through: 1, by: -1) {
            rename("\(path).\(index)", "\(path).\(index + 1)")
        }
        rename(path, path + ".1")
    }

    private func fail(_ message: String, errnoCode: Int32?) {
        if case .failing = state { return }
        state = .failing
        var metadata: Logger.Metadata = ["path": "\(path)"]
        if let errnoCode { metadata["error"] = "\(String(cString: strerror(errnoCode)))" }
        logger.error("\(message); records are dropped until it works again", metadata: metadata)
    }

    /// The last `count` complete lines of a file, read backwards in blocks; none when it is missing or a link.
    static func lastLines(of path: String, count: Int) -> [[UInt8]] {
        guard count > 0 else { return [] }
        let descriptor = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else { return [] }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG else { return [] }
        var end = Int(status.st_size)
        var buffer: [UInt8] = []
        let block = 64 * 1024
        // Read blocks from the end until `count` + 1 newlines are in hand or the start is reached.
        while end > 0, buffer.lazy.filter({ $0 == 0x0A }).count <= count {
            let start = max(0, end - block)
            var chunk = [UInt8](repeating: 0, count: end - start)
            let read = chunk.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, off_t(start)) }
            guard read == end - start else { break }
            buffer = chunk + buffer
            end = start
        }
        var lines = buffer.split(separator: 0x0A, omittingEmptySubsequences: true).map(Array.init)
        // A partial first line (the block boundary cut it) is dropped unless the file's start was reached.
        if end > 0, !lines.isEmpty { lines.removeFirst() }
        return Array(lines.suffix(count))
    }
}
