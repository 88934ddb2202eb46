#if canImport(Glibc)
import Glibc
#endif
import Logging
import ServiceLifecycle
import Synchronization
import TenantGateway
import UnixSignals

/// A validated system-mode configuration: the gateway's part, shared by every tenant, and the supervisor's keys.
package struct SystemConfiguration: Sendable {
    /// The gateway configuration every tenant serves.
    package var gateway: GatewayConfig
    /// The group whose members see every tenant in `rosettad status` (`admin_group:`).
    package var adminGroup: String?

    /// Parses and validates the whole file: the gateway's keys, and that `admin_group` names a group on this host.
    package static func parse(
        text: String, file: String, environment: [String: String],
        groupExists: (String) -> Bool = { getgrnam($0) != nil }
    ) throws(ConfigError) -> SystemConfiguration {
        let (gatewayText, adminGroup) = SystemConfigText.split(text)
        // systemd sets no USER/LOGNAME for a root service. An argo provider's `user:` defaults to them, yet in system
        // mode every tenant's Argo user is its own (mapped) name, so the daemon's login name only fills the default.
        var environment = environment
        if environment["USER"] == nil, environment["LOGNAME"] == nil, let account = getpwuid(geteuid()) {
            environment["LOGNAME"] = String(cString: account.pointee.pw_name)
        }
        let gateway = try GatewayConfig.parse(yaml: gatewayText, file: file, environment: environment)
        if let adminGroup, !groupExists(adminGroup) {
            throw ConfigError(
                code: "unknown_group", message: "admin_group: there is no group '\(adminGroup)' on this host",
                file: file, line: SystemConfigText.adminGroupLine(in: text))
        }
        return SystemConfiguration(gateway: gateway, adminGroup: adminGroup)
    }

    /// Reads and validates the file at `path`; a missing or unreadable file is an error (nothing is written).
    package static func read(path: String, environment: [String: String]) throws(ConfigError) -> SystemConfiguration {
        guard access(path, R_OK) == 0 else {
            throw ConfigError(
                code: "unreadable", message: "cannot read the config: \(String(cString: strerror(errno)))", file: path, line: nil)
        }
        let text: String
        do {
            text = try ConfigFile.loadOrCreateDefault(at: path, logger: Logger(label: "rosettad.config"))
        } catch {
            throw ConfigError(code: "unreadable", message: "\(error)", file: path, line: nil)
        }
        return try parse(text: text, file: path, environment: environment)
    }
}

extension SystemConfigText {
    /// The 1-based line of the top-level `admin_group:` key, if there is one.
    package static func adminGroupLine(in text: String) -> Int? {
        text.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.hasPrefix("admin_group:") }.map { $0 + 1 }
    }
}

/// When the config was last reloaded, and whether it was applied or refused (and why).
package struct ReloadRecord: Sendable, Equatable {
    /// Seconds since the epoch.
    package var at: Int
    /// The refusal, or `nil` when the new config was applied.
    package var error: String?

    /// Creates a record: `error` is the refusal, `nil` when applied.
    package init(at: Int, error: String?) {
        self.at = at
        self.error = error
    }

    /// The record for `rosettad status --json`: `{at, result: "applied"|"refused", error?}`.
    package var json: JSON {
        var object: JSONObject = ["at": JSON(at), "result": .string(error == nil ? "applied" : "refused")]
        if let error { object["error"] = .string(error) }
        return .object(object)
    }
}

/// A tenant's request handler that a reload swaps: each request runs on the handler current when it
/// started, so requests in flight finish on the old config and new ones get the new config.
final class ReloadableHandler: GatewayRequestHandler {
    private let current: Mutex<GatewayHandler>
    private let build: @Sendable (GatewayConfig) -> GatewayHandler

    /// Creates the handler for `config`; `build` makes the handler for a config (and for every later one).
    init(config: GatewayConfig, build: @escaping @Sendable (GatewayConfig) -> GatewayHandler) {
        self.build = build
        self.current = Mutex(build(config))
    }

    /// Serves new requests with a handler built for `config`.
    func apply(_ config: GatewayConfig) {
        let handler = build(config)
        current.withLock { $0 = handler }
    }

    func handle(_ request: GatewayRequest, writer: some ResponseWriter) async {
        let handler = current.withLock { $0 }
        await handler.handle(request, writer: writer)
    }
}

extension SystemDaemon {
    /// Re-reads the config; a valid one is applied to every tenant's new requests, an invalid one is refused and logged.
    ///
    /// systemd is told `RELOADING=1` first and `READY=1` after, either way. Listener limits and
    /// `alcf` grants stay as the tenants started with until they are re-enabled or the daemon restarts.
    @discardableResult
    func reload(environment: [String: String]) -> ReloadRecord {
        notifier.reloading()
        defer { notifier.ready(status: servingStatus) }
        let record: ReloadRecord
        do {
            let configuration = try SystemConfiguration.read(path: options.configPath, environment: environment)
            config = configuration.gateway
            adminGroup = configuration.adminGroup
            let handlers = servingHandlers
            for handler in handlers { handler.apply(configuration.gateway) }
            record = ReloadRecord(at: Int(time(nil)), error: nil)
            logger.notice("configuration reloaded", metadata: ["path": "\(options.configPath)", "tenants": "\(handlers.count)"])
        } catch {
            record = ReloadRecord(at: Int(time(nil)), error: error.description)
            logger.error("configuration reload refused; the previous configuration stays", metadata: [
                "error": "\(error.description)", "error.code": "\(error.code)",
            ])
        }
        lastReload = record
        return record
    }
}

/// Reloads the config on every SIGHUP until graceful shutdown.
struct SystemReloadService: Service {
    let signals: UnixSignalsSequence
    let daemon: SystemDaemon
    let environment: [String: String]

    func run() async throws {
        for await _ in signals.cancelOnGracefulShutdown() {
            await daemon.reload(environment: environment)
        }
    }
}
