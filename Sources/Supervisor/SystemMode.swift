#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization
import TenantGateway
import UnixSignals

/// Where system mode reads its config, keeps its state and listens for control requests.
package struct SystemModeOptions: Sendable {
    /// The config file (a commented default is written when absent).
    package var configPath: String = "/etc/rosettad/rosettad.yaml"
    /// The root-only state directory.
    package var stateDirectory: String = "/var/lib/rosettad"
    /// The control socket (mode 0666; every request is authorised by `SO_PEERCRED`).
    package var controlSocketPath: String = "/run/rosettad/control.sock"
    /// The PAM account check applied on enable.
    package var pam = PAMAccountCheck()

    /// Creates the default options.
    package init() {}
}

/// System mode: the root daemon serving every enabled user's tenant.
package enum SystemMode {
    /// Starts the daemon, serves until SIGTERM or SIGINT, drains, and returns the exit status.
    package static func run(options: SystemModeOptions, environment: [String: String]) async -> Int32 {
        var logger = Logger(label: "rosettad")
        logger.logLevel = environment["ROSETTAD_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        guard geteuid() == 0 else {
            UserMode.printError("system mode must run as root (for one user without root: `rosettad serve --user`)")
            return 77
        }
        // First, before anything can start a child: take what systemd passed and clear LISTEN_*.
        let inherited = SystemdSocketActivation.takeInherited(logger: logger)
        let notifier = SystemdNotifier(logger: logger)
        do {
            let text = try ConfigFile.loadOrCreateDefault(at: options.configPath, logger: logger)
            let configuration: SystemConfiguration
            do {
                configuration = try SystemConfiguration.parse(text: text, file: options.configPath, environment: environment)
            } catch {
                throw UserModeError(message: "configuration error: \(error)", exitStatus: 78)
            }
            do {
                try SecretFile.ensurePrivateDirectory(options.stateDirectory)
                try SecretFile.ensurePrivateDirectory(options.stateDirectory + "/tenants")
            } catch {
                throw UserModeError(message: "state directory \(options.stateDirectory): \(error)", exitStatus: 73)
            }
            let anyPeer = try await SystemControlListener.open(
                options: options, inherited: inherited.control, limits: configuration.gateway.limits, notifier: notifier, logger: logger)
            let upstream = UpstreamHTTPClient(logger: logger)
            defer { upstream.shutdown() }
            let daemon = SystemDaemon(
                options: options, configuration: configuration, upstream: upstream,
                inheritedSockets: inherited.tenants, notifier: notifier, logger: logger)
            let server = HTTPFrontServer(listeners: [anyPeer], handler: SystemControlHandler(daemon: daemon), logger: logger)
            // Trapped before READY=1, so a reload systemd sends once the daemon is up never kills it.
            let hangups = await UnixSignalsSequence(trapping: .sighup)
            writeAll("rosettad \(RosettaVersion.current) serving in system mode; control socket \(options.controlSocketPath)\n", to: STDOUT_FILENO)
            // Graceful shutdown runs in reverse order: the daemon drains first, the watchdog pings until the end.
            var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
            if let interval = SystemdNotifier.watchdogInterval() {
                logger.info("systemd watchdog enabled", metadata: ["watchdog.interval": "\(interval)"])
                services.append(.init(service: SystemdWatchdogService(interval: interval, daemon: daemon, notifier: notifier)))
            }
            services.append(.init(service: SystemReloadService(signals: hangups, daemon: daemon, environment: environment)))
            if let scrape = MetricsScrapeService.forConfig(configuration.gateway, logger: logger, beforeScrape: {
                let counts = await daemon.tenantCounts()
                GatewayMetrics.process.tenants(enabled: counts.enabled, active: counts.active)
            }) { services.append(scrape) }
            services.append(.init(service: SystemDaemonService(daemon: daemon, control: server, notifier: notifier)))
            let group = ServiceGroup(configuration: .init(
                services: services,
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
            try await group.run()
            logger.info("stopped")
            return 0
        } catch let error as UserModeError {
            UserMode.printError(error.message)
            return error.exitStatus
        } catch {
            UserMode.printError("\(error)")
            return 1
        }
    }
}

/// The control socket: adopted from systemd (`control`), or bound so that every uid may connect (mode 0666).
///
/// A socket the daemon bound itself is pushed to systemd's fd store under `control`, so a restart
/// under systemd keeps it open even without `rosettad.socket`.
enum SystemControlListener {
    static func open(
        options: SystemModeOptions, inherited: Int32?, limits: HTTPFrontLimits, notifier: SystemdNotifier, logger: Logger
    ) async throws -> HTTPFrontListener {
        if let inherited {
            if SystemdSocketActivation.isListeningUnixSocket(inherited) {
                do {
                    return try await HTTPFrontListener.adoptListeningSocket(inherited, front: .anyPeerUnixSocket, limits: limits, logger: logger)
                } catch {
                    close(inherited)
                    throw UserModeError(message: "cannot serve the control socket systemd passed: \(error)", exitStatus: 71)
                }
            }
            logger.warning("the descriptor named 'control' is not a listening Unix socket; binding the control socket instead")
            close(inherited)
            notifier.removeStored(name: SystemdSocketName.control.description)
        }
        let path = options.controlSocketPath
        let directory = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        if !directory.isEmpty, mkdir(directory, 0o755) != 0, errno != EEXIST {
            throw UserModeError(message: "cannot create \(directory): \(String(cString: strerror(errno)))", exitStatus: 73)
        }
        let descriptor: Int32
        do {
            descriptor = try bind(path: path)
        } catch {
            throw UserModeError(message: "cannot listen on \(path): \(error)", exitStatus: 71)
        }
        notifier.store([descriptor], name: SystemdSocketName.control.description)
        do {
            return try await HTTPFrontListener.adoptListeningSocket(descriptor, front: .anyPeerUnixSocket, limits: limits, logger: logger)
        } catch {
            close(descriptor)
            throw UserModeError(message: "cannot listen on \(path): \(error)", exitStatus: 71)
        }
    }

    private static func bind(path: String) throws(TenantSocketError) -> Int32 {
        if TenantSocketFilesystem.hasListener(at: path) {
            throw TenantSocketError(code: "occupied", message: "another rosettad is already serving \(path)", errnoCode: nil)
        }
        unlink(path)
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw TenantSocketError(code: "socket", message: "cannot create a socket", errnoCode: errno) }
        guard let address = try? SocketAddress(unixDomainSocketPath: path) else {
            close(descriptor)
            throw TenantSocketError(code: "socket", message: "\(path) is not a usable socket path", errnoCode: nil)
        }
        let bound = address.withSockAddr { Glibc.bind(descriptor, $0, socklen_t($1)) }
        guard bound == 0, chmod(path, 0o666) == 0, listen(descriptor, 256) == 0 else {
            let number = errno
            close(descriptor)
            throw TenantSocketError(code: "socket", message: "cannot listen on \(path): \(String(cString: strerror(number)))", errnoCode: number)
        }
        return descriptor
    }
}

/// Splits the system config into the gateway's part and the supervisor's own top-level keys (`admin_group`).
package enum SystemConfigText {
    /// Returns the text without a top-level `admin_group:` line, and that line's value.
    package static func split(_ text: String) -> (gateway: String, adminGroup: String?) {
        var adminGroup: String?
        var kept: [Substring] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("admin_group:") {
                var value = line.dropFirst("admin_group:".count)
                if let hash = value.firstIndex(of: "#") { value = value[..<hash] }
                let trimmed = value.trimmingSpacesAndQuotes()
                adminGroup = trimmed.isEmpty ? nil : trimmed
                kept.append("")
            } else {
                kept.append(line)
            }
        }
        return (kept.joined(separator: "\n"), adminGroup)
    }
}

extension Substring {
    fileprivate func trimmingSpacesAndQuotes() -> String {
        var text = self
        while let first = text.first, first == " " || first == "\t" || first == "\"" || first == "'" { text = text.dropFirst() }
        while let last = text.last, last == " " || last == "\t" || last == "\"" || last == "'" || last == "\r" { text = text.dropLast() }
        return String(text)
    }
}

/// Runs the daemon as a lifecycle service: graceful shutdown drains the control socket and every tenant.
struct SystemDaemonService: Service {
    let daemon: SystemDaemon
    let control: HTTPFrontServer
    let notifier: SystemdNotifier

    func run() async throws {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { await control.run() }
                group.addTask { await daemon.run() }
            }
        } onGracefulShutdown: {
            notifier.stopping()
            control.startDraining(deadline: .now + .seconds(2))
            daemon.startShutdown()
        }
    }
}

/// Counts a tenant's requests for `rosettad status`.
final class TenantStatistics: Sendable {
    private struct Counts {
        var requests = 0
        var errors = 0
        var inFlight = 0
        var lastUsed: Int?
    }
    private let counts = Mutex(Counts())

    func started() { counts.withLock { $0.requests += 1; $0.inFlight += 1; $0.lastUsed = Int(time(nil)) } }
    func finished(failed: Bool) { counts.withLock { $0.inFlight -= 1; if failed { $0.errors += 1 } } }

    var json: JSONObject {
        counts.withLock { counts in
            ["requests": JSON(counts.requests), "errors": JSON(counts.errors), "in_flight": JSON(counts.inFlight),
             "last_used": counts.lastUsed.map { JSON($0) } ?? .null]
        }
    }
}

/// Wraps a tenant's handler to count requests, errors (status ≥ 400) and requests in flight.
struct CountingHandler<Inner: GatewayRequestHandler>: GatewayRequestHandler {
    let inner: Inner
    let statistics: TenantStatistics

    func handle(_ request: GatewayRequest, writer: some ResponseWriter) async {
        statistics.started()
        let observed = StatusObservingWriter(inner: writer)
        await inner.handle(request, writer: observed)
        statistics.finished(failed: observed.failed)
    }
}

/// Passes writes through and remembers whether the response status was an error.
final class StatusObservingWriter<Inner: ResponseWriter>: ResponseWriter {
    let inner: Inner
    private let status = Mutex<UInt>(0)

    init(inner: Inner) { self.inner = inner }

    var failed: Bool { status.withLock { $0 >= 400 } }

    func writeWhole(status: HTTPResponseStatus, headers: HTTPHeaders, body: [UInt8]) async throws {
        self.status.withLock { $0 = status.code }
        try await inner.writeWhole(status: status, headers: headers, body: body)
    }
    func startStream(status: HTTPResponseStatus, headers: HTTPHeaders) async throws {
        self.status.withLock { $0 = status.code }
        try await inner.startStream(status: status, headers: headers)
    }
    func writeChunk(_ bytes: [UInt8]) async throws { try await inner.writeChunk(bytes) }
    func finishStream() async throws { try await inner.finishStream() }
}
