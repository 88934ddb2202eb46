#if canImport(Glibc)
import Glibc
#endif
import TenantGateway

/// A failure that stops the benchmark, with a message for the operator.
struct BenchFailure: Error, CustomStringConvertible {
    /// What went wrong.
    var description: String

    /// Creates a failure with a message.
    init(_ description: String) {
        self.description = description
    }
}

/// Where a benchmark run keeps the gateway's files: a private temporary directory removed at the end.
struct BenchWorkspace: Sendable {
    /// The directory itself (`/tmp/rosetta-bench.XXXXXX`, mode 0700).
    let root: String

    /// The gateway's `HOME`.
    var home: String { root + "/home" }
    /// The gateway's config file.
    var configPath: String { root + "/config.yaml" }
    /// The gateway's Unix socket.
    var socketPath: String { root + "/rosetta.sock" }
    /// The gateway's state directory (it creates it and writes `token` there).
    var stateDirectory: String { root + "/state" }
    /// Where the gateway's stdout and stderr go.
    var logPath: String { root + "/rosettad.log" }

    /// Creates a fresh workspace with an empty home directory.
    static func create() throws -> BenchWorkspace {
        var template = Array("/tmp/rosetta-bench.XXXXXX".utf8CString)
        guard let created = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw BenchFailure("cannot create a temporary directory: \(String(cString: strerror(errno)))")
        }
        let workspace = BenchWorkspace(root: String(cString: created))
        guard mkdir(workspace.home, 0o700) == 0 else {
            throw BenchFailure("cannot create \(workspace.home): \(String(cString: strerror(errno)))")
        }
        return workspace
    }

    /// Removes the workspace and everything in it, without following symbolic links.
    func remove() {
        removeTree(root)
    }
}

/// Removes a file, or a directory and its contents, never following symbolic links.
private func removeTree(_ path: String) {
    var info = stat()
    guard lstat(path, &info) == 0 else { return }
    guard (info.st_mode & S_IFMT) == S_IFDIR else {
        unlink(path)
        return
    }
    for child in directoryEntries(path) { removeTree(path + "/" + child) }
    rmdir(path)
}

/// The names in a directory, without `.` and `..`; empty when it cannot be read.
private func directoryEntries(_ path: String) -> [String] {
    guard let directory = opendir(path) else { return [] }
    defer { closedir(directory) }
    var names: [String] = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}

/// The release `rosettad` started as `rosettad serve --user` against the fake upstream, observed and stopped by the benchmark.
final class GatewayProcess: Sendable {
    /// The process id.
    let pid: pid_t
    /// The TCP port the gateway listens on (127.0.0.1).
    let port: Int
    /// The tenant token, read from the state directory once the gateway is up.
    let token: String
    /// The files the gateway was given.
    let workspace: BenchWorkspace

    private init(pid: pid_t, port: Int, token: String, workspace: BenchWorkspace) {
        self.pid = pid
        self.port = port
        self.token = token
        self.workspace = workspace
    }

    /// The config that routes the two bench models to the fake upstream on `upstreamPort`.
    static func configText(upstreamPort: Int, openAIKey: String, anthropicKey: String) -> String {
        """
        # Written by rosetta-bench: both providers are the benchmark's fake upstream.
        providers:
          fake-openai: {type: openai_chat, base_url: "http://127.0.0.1:\(upstreamPort)/v1", api_key: \(openAIKey)}
          fake-anthropic: {type: anthropic, base_url: "http://127.0.0.1:\(upstreamPort)", api_key: \(anthropicKey)}
        models:
          bench-openai: {provider: fake-openai, upstream_model: fake-gpt}
          bench-anthropic: {provider: fake-anthropic, upstream_model: fake-claude}

        """
    }

    /// Writes the config, starts rosettad, and waits until `GET /health` answers 200 with the tenant token.
    static func launch(
        executable: String,
        workspace: BenchWorkspace,
        config: String,
        port requestedPort: Int,
        client: UpstreamHTTPClient,
        startupTimeout: Duration
    ) async throws -> GatewayProcess {
        guard access(executable, X_OK) == 0 else {
            throw BenchFailure("\(executable) is not an executable file (build it with `swift build -c release`)")
        }
        try writeFile(workspace.configPath, contents: config, mode: 0o600)
        let port = requestedPort > 0 ? requestedPort : try freeLoopbackPort()
        let arguments = [
            executable, "serve", "--user",
            "--config", workspace.configPath,
            "--socket", workspace.socketPath,
            "--port", String(port),
            "--state-dir", workspace.stateDirectory,
        ]
        var environment = ["HOME=\(workspace.home)"]
        for name in ["PATH", "USER", "LOGNAME", "LANG", "TMPDIR"] {
            if let value = getenv(name) { environment.append("\(name)=\(String(cString: value))") }
        }
        let pid = try spawn(arguments: arguments, environment: environment, outputPath: workspace.logPath)

        let deadline = ContinuousClock.now + startupTimeout
        var lastProblem = "no answer yet"
        while ContinuousClock.now < deadline {
            if let status = reap(pid) {
                throw BenchFailure("rosettad exited during start-up (\(status)); its output:\n\(tail(of: workspace.logPath))")
            }
            if let token = readFile(workspace.stateDirectory + "/token")?.trimmingTrailingWhitespace(), !token.isEmpty {
                do {
                    let response = try await client.execute(UpstreamRequest(
                        url: "http://127.0.0.1:\(port)/health",
                        headers: [("Authorization", "Bearer \(token)")],
                        connectTimeout: .seconds(1),
                        idleTimeout: .seconds(2),
                        totalTimeout: .seconds(2)
                    ))
                    let body = try await response.collectBody(upTo: 1 << 20)
                    if response.status == 200 {
                        return GatewayProcess(pid: pid, port: port, token: token, workspace: workspace)
                    }
                    lastProblem = "GET /health answered \(response.status): \(String(decoding: body.prefix(300), as: UTF8.self))"
                } catch {
                    lastProblem = "GET /health failed: \(error)"
                }
            } else {
                lastProblem = "no token in \(workspace.stateDirectory)/token yet"
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        kill(pid, SIGKILL)
        _ = waitForExit(pid, timeout: .seconds(5))
        throw BenchFailure("rosettad was not ready within \(startupTimeout) (\(lastProblem)); its output:\n\(tail(of: workspace.logPath))")
    }

    /// The CPU time (user + system, all threads) the gateway has used so far, from `/proc/PID/stat`.
    func cpuTime() -> Duration? {
        guard let stat = readFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
        // Fields after the command name start at field 3 (state); utime is field 14, stime field 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Int(fields[11]), let system = Int(fields[12]) else { return nil }
        let ticksPerSecond = sysconf(Int32(_SC_CLK_TCK))
        guard ticksPerSecond > 0 else { return nil }
        return .microseconds((user + system) * 1_000_000 / ticksPerSecond)
    }

    /// Context switches (voluntary + involuntary) of all the gateway's threads so far, from `/proc/PID/task/*/status`.
    ///
    /// Threads that ended are not counted, so a difference over a phase is exact only while the thread set is stable.
    func contextSwitches() -> Int? {
        let tasks = directoryEntries("/proc/\(pid)/task")
        guard !tasks.isEmpty else { return nil }
        var total = 0
        for task in tasks {
            guard let status = readFile("/proc/\(pid)/task/\(task)/status") else { continue }
            for line in status.split(separator: "\n") {
                if line.hasPrefix("voluntary_ctxt_switches:") || line.hasPrefix("nonvoluntary_ctxt_switches:") {
                    total += line.split(whereSeparator: { $0 == " " || $0 == "\t" }).last.flatMap { Int($0) } ?? 0
                }
            }
        }
        return total
    }

    /// The gateway's resident memory in KiB, from `/proc/PID/status` (`VmRSS`).
    func residentKiB() -> Int? {
        guard let status = readFile("/proc/\(pid)/status") else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
        }
        return nil
    }

    /// Sends SIGTERM and waits (bounded) for the gateway to exit; returns how it exited.
    func stop(timeout: Duration) -> GatewayExit {
        if let status = reap(pid) { return GatewayExit(description: "had already exited: \(status)", isClean: false) }
        let start = ContinuousClock.now
        kill(pid, SIGTERM)
        if let status = waitForExit(pid, timeout: timeout) {
            let elapsed = ContinuousClock.now - start
            return GatewayExit(description: "\(status) \(formatMilliseconds(elapsed)) ms after SIGTERM", isClean: status == "exit status 0")
        }
        kill(pid, SIGKILL)
        _ = waitForExit(pid, timeout: .seconds(5))
        return GatewayExit(description: "still running \(timeout) after SIGTERM; killed", isClean: false)
    }

    /// The last lines of the gateway's output, for failure messages.
    func outputTail() -> String { tail(of: workspace.logPath) }
}

/// How the gateway process ended.
struct GatewayExit: Sendable {
    /// A sentence such as `exit status 0 12.3 ms after SIGTERM`.
    var description: String
    /// Whether it exited with status 0 after SIGTERM.
    var isClean: Bool
}

// MARK: Process and file helpers

/// Starts a program with an empty signal mask and default signal dispositions, output to a file.
private func spawn(arguments: [String], environment: [String], outputPath: String) throws -> pid_t {
    var fileActions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&fileActions)
    defer { posix_spawn_file_actions_destroy(&fileActions) }
    posix_spawn_file_actions_addopen(&fileActions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&fileActions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_adddup2(&fileActions, 1, 2)

    // The benchmark's threads block most signals (libdispatch); the gateway must start as a shell would start it.
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var emptyMask = sigset_t()
    sigemptyset(&emptyMask)
    posix_spawnattr_setsigmask(&attributes, &emptyMask)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE] { sigaddset(&defaults, signal) }
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

    let argv = arguments.map { strdup($0) } + [nil]
    let envp = environment.map { strdup($0) } + [nil]
    defer {
        for pointer in argv { free(pointer) }
        for pointer in envp { free(pointer) }
    }
    var pid: pid_t = 0
    let result = posix_spawn(&pid, arguments[0], &fileActions, &attributes, argv, envp)
    guard result == 0 else {
        throw BenchFailure("cannot start \(arguments[0]): \(String(cString: strerror(result)))")
    }
    return pid
}

/// The exit status of a child that has ended (reaping it), or nil while it runs.
private func reap(_ pid: pid_t) -> String? {
    var status: Int32 = 0
    let result = waitpid(pid, &status, WNOHANG)
    guard result == pid else { return result < 0 ? "not a child any more" : nil }
    return describeWaitStatus(status)
}

/// Polls (every 5 ms, up to the timeout) until the child exits; returns its status or nil on timeout.
private func waitForExit(_ pid: pid_t, timeout: Duration) -> String? {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if let status = reap(pid) { return status }
        usleep(5_000)
    }
    return nil
}

private func describeWaitStatus(_ status: Int32) -> String {
    let signal = status & 0x7f
    if signal == 0 { return "exit status \((status >> 8) & 0xff)" }
    return "killed by signal \(signal)"
}

/// An unused TCP port on 127.0.0.1, found by binding port 0 and closing the socket.
private func freeLoopbackPort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw BenchFailure("socket(): \(String(cString: strerror(errno)))") }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw BenchFailure("bind(127.0.0.1:0): \(String(cString: strerror(errno)))") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
    }
    guard named == 0 else { throw BenchFailure("getsockname(): \(String(cString: strerror(errno)))") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Reads a whole (small) file as UTF-8, or nil when it cannot be opened.
func readFile(_ path: String) -> String? {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { return nil }
    defer { close(descriptor) }
    var contents: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 16_384)
    while true {
        let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        if count < 0, errno == EINTR { continue }
        guard count > 0 else { break }
        contents.append(contentsOf: buffer[0..<count])
    }
    return String(decoding: contents, as: UTF8.self)
}

/// Writes a file with the given mode, replacing what was there.
private func writeFile(_ path: String, contents: String, mode: mode_t) throws {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode)
    guard descriptor >= 0 else { throw BenchFailure("cannot write \(path): \(String(cString: strerror(errno)))") }
    defer { close(descriptor) }
    let bytes = Array(contents.utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        if written < 0, errno == EINTR { continue }
        guard written > 0 else { throw BenchFailure("cannot write \(path): \(String(cString: strerror(errno)))") }
        offset += written
    }
}

/// The last 40 lines of a file, for failure messages.
private func tail(of path: String) -> String {
    guard let text = readFile(path) else { return "(no output file)" }
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    return lines.suffix(40).joined(separator: "\n")
}

extension String {
    /// The string without trailing spaces, tabs and line breaks.
    func trimmingTrailingWhitespace() -> String {
        var result = Substring(self)
        while let last = result.last, last == " " || last == "\n" || last == "\r" || last == "\t" {
            result.removeLast()
        }
        return String(result)
    }
}

/// Formats a duration in milliseconds with three decimals.
func formatMilliseconds(_ duration: Duration) -> String {
    formatDecimal(durationMilliseconds(duration), places: 3)
}

/// A duration in milliseconds as a floating-point number.
func durationMilliseconds(_ duration: Duration) -> Double {
    let (seconds, attoseconds) = duration.components
    return Double(seconds) * 1_000 + Double(attoseconds) / 1e15
}

/// Formats a number with a fixed number of decimals (no Foundation).
func formatDecimal(_ value: Double, places: Int) -> String {
    guard value.isFinite else { return "n/a" }
    var scale = 1.0
    for _ in 0..<places { scale *= 10 }
    let scaled = (abs(value) * scale).rounded()
    let whole = Int(scaled / scale)
    let fraction = Int(scaled - Double(whole) * scale)
    var text = (value < 0 && scaled > 0 ? "-" : "") + String(whole)
    if places > 0 {
        let digits = String(fraction)
        text += "." + String(repeating: "0", count: max(0, places - digits.count)) + digits
    }
    return text
}
