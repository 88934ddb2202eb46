#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOHTTP1
import TenantGateway

/// A refused or failed control request, answered with its HTTP status and message.
struct SystemControlError: Error, Sendable {
    /// The HTTP status to answer with.
    var status: HTTPResponseStatus
    /// A stable code (`not_permitted`, `pam_refused`, `unknown_user`, `tenant_failed`, …).
    var code: String
    /// What went wrong, for the user.
    var message: String
}

/// The supervisor of system mode: owns every enabled tenant, the persisted list of them, and their fronts.
actor SystemDaemon {
    /// One enabled user's tenant.
    struct Entry {
        var identity: UserIdentity
        var socketPath: String
        var port: Int?
        var enabledAt: Int
        var statistics = TenantStatistics()
        var tenant: Tenant?
        var server: HTTPFrontServer?
        /// The tenant's request handler, rebuilt for each reloaded config.
        var handler: ReloadableHandler?
        /// The tenant's Argo tunnels and Globus grants, for the status.
        var wiring: TenantWiring?
        /// Why the tenant is not serving, when it failed to start.
        var failure: String?
    }

    private enum State {
        case starting
        case running
        case stopping
    }

    private enum Command: Sendable {
        case serve(uid: UInt32, server: HTTPFrontServer, wiring: TenantWiring)
        case shutdown
    }

    let options: SystemModeOptions
    /// The configuration in force: the one started with, or the last one a reload applied.
    var config: GatewayConfig
    /// The group whose members see every tenant in the status (from the config's `admin_group:`).
    var adminGroup: String?
    let upstream: UpstreamHTTPClient
    let logger: Logger
    let notifier: SystemdNotifier
    let startedAt = Int(time(nil))
    /// Tenants' listening sockets passed by systemd and not yet adopted (only until the restore is done).
    var inheritedSockets: [UInt32: InheritedTenantSockets]
    /// When the config was last reloaded and how that went.
    var lastReload: ReloadRecord?
    private var state = State.starting
    private var entries: [UInt32: Entry] = [:]
    private var starting: Set<UInt32> = []
    private let commands: AsyncStream<Command>
    private let commandSink: AsyncStream<Command>.Continuation

    init(
        options: SystemModeOptions, configuration: SystemConfiguration, upstream: UpstreamHTTPClient,
        inheritedSockets: [UInt32: InheritedTenantSockets] = [:], notifier: SystemdNotifier, logger: Logger
    ) {
        self.options = options
        self.config = configuration.gateway
        self.adminGroup = configuration.adminGroup
        self.upstream = upstream
        self.inheritedSockets = inheritedSockets
        self.notifier = notifier
        self.logger = logger
        (commands, commandSink) = AsyncStream<Command>.makeStream()
    }

    private var registryPath: String { options.stateDirectory + "/tenants.json" }
    private func tenantDirectory(_ uid: UInt32) -> String { options.stateDirectory + "/tenants/\(uid)" }

    /// Restores the persisted tenants, then runs every tenant's fronts until shutdown; one tenant's end never ends another.
    func run() async {
        await restore()
        closeUnclaimedInheritedSockets()
        state = .running
        notifier.ready(status: servingStatus)
        await withDiscardingTaskGroup { group in
            for await command in commands {
                switch command {
                case .serve(let uid, let server, let wiring):
                    group.addTask {
                        await wiring.whileTunnelsRun { await server.run() }
                        await self.tenantStopped(uid: uid, server: server)
                    }
                case .shutdown:
                    await drainAll()
                    commandSink.finish()
                }
            }
        }
    }

    /// Starts a graceful shutdown from synchronous code.
    nonisolated func startShutdown() {
        commandSink.yield(.shutdown)
    }

    /// Answers at once: the watchdog pings only while the actor does.
    func heartbeat() {}

    /// The status line for systemd: how many tenants serve.
    var servingStatus: String {
        let serving = entries.values.filter { $0.server != nil && $0.failure == nil }.count
        let failed = entries.values.filter { $0.failure != nil }.count
        return "serving \(serving) tenant\(serving == 1 ? "" : "s")" + (failed > 0 ? ", \(failed) failed" : "")
    }

    /// Tenants enabled, and of those the ones serving a request now or in the last five minutes (for `/metrics`).
    func tenantCounts() -> (enabled: Int, active: Int) {
        let recent = Int(time(nil)) - 300
        let active = entries.values.filter { entry in
            let statistics = entry.statistics.json
            return (statistics["in_flight"]?.intValue ?? 0) > 0 || (statistics["last_used"]?.intValue ?? .min) >= recent
        }
        return (entries.count, active.count)
    }

    /// Every tenant's entry, for a reload to rebuild their handlers.
    var servingHandlers: [ReloadableHandler] { entries.values.compactMap(\.handler) }

    private func drainAll() async {
        state = .stopping
        for entry in entries.values {
            entry.server?.startDraining(deadline: .now + config.shutdownGrace)
        }
    }

    private func tenantStopped(uid: UInt32, server: HTTPFrontServer) async {
        guard let entry = entries[uid], entry.server === server else { return }
        await entry.tenant?.transition(to: .stopped)
    }

    // MARK: - Control operations

    /// Enables the caller's tenant after the PAM account check; enabling an enabled tenant restarts a failed one.
    func enable(uid: UInt32) async throws(SystemControlError) -> JSON {
        let identity = try Self.identity(of: uid)
        if let existing = entries[uid], existing.failure == nil { return await status(of: existing) }
        // The actor is re-entered while a tenant starts: a second enable for the same user waits its turn by refusing.
        guard !starting.contains(uid) else {
            throw SystemControlError(status: .conflict, code: "in_progress", message: "an enable for uid \(uid) is already in progress")
        }
        starting.insert(uid)
        defer { starting.remove(uid) }
        let pam = options.pam
        do {
            try pam.check(user: identity.name)
        } catch {
            logger.notice("enable refused by PAM", metadata: ["tenant.uid": "\(uid)", "pam.code": "\(error.pamCode.map(String.init) ?? "-")", "reason": "\(error.code)"])
            throw SystemControlError(status: .forbidden, code: "pam_refused", message: error.message)
        }
        let entry = await start(identity: identity, enabledAt: Int(time(nil)))
        entries[uid] = entry
        persist()
        if let failure = entry.failure {
            throw SystemControlError(status: .internalServerError, code: "tenant_failed", message: "enabled, but the gateway could not start: \(failure)")
        }
        logger.info("tenant enabled", metadata: ["tenant.uid": "\(uid)", "tenant.user": "\(identity.name)"])
        notifier.status(servingStatus)
        return await status(of: entry)
    }

    /// Disables the caller's tenant: drains its fronts, removes its socket file and forgets it.
    func disable(uid: UInt32) async throws(SystemControlError) -> JSON {
        guard let entry = entries.removeValue(forKey: uid) else {
            throw SystemControlError(status: .notFound, code: "not_enabled", message: "rosettad is not enabled for uid \(uid)")
        }
        persist()
        forgetStoredSockets(uid: uid)
        if let server = entry.server {
            await server.drain(deadline: .now + config.shutdownGrace)
        }
        await TenantSocketFilesystem.removeSocket(at: entry.socketPath, for: entry.identity)
        logger.info("tenant disabled", metadata: ["tenant.uid": "\(uid)"])
        notifier.status(servingStatus)
        return ["user": .string(entry.identity.name), "uid": JSON(Int(uid)), "enabled": false]
    }

    /// The daemon's status and the tenants the caller may see: all for root and the admin group, else only their own.
    func statusReport(forPeer uid: UInt32) async throws(SystemControlError) -> JSON {
        let seesAll = uid == 0 || isAdmin(uid: uid)
        let visible = entries.values.filter { seesAll || $0.identity.uid == uid }.sorted { $0.identity.uid < $1.identity.uid }
        let daemon: JSONObject = [
            "version": .string(RosettaVersion.current),
            "uptime_seconds": JSON(Int(time(nil)) - startedAt),
            "started_at": JSON(startedAt),
            "config": .string(options.configPath),
            "state_dir": .string(options.stateDirectory),
            "control_socket": .string(options.controlSocketPath),
            "pid": JSON(Int(getpid())),
            "scope": .string(seesAll ? "all" : "own"),
            "last_reload": lastReload?.json ?? .null,
        ]
        var tenants: [JSON] = []
        for entry in visible { tenants.append(await status(of: entry)) }
        return ["daemon": .object(daemon), "tenants": .array(tenants)]
    }

    private func isAdmin(uid: UInt32) -> Bool {
        guard let adminGroup, let group = getgrnam(adminGroup), let identity = try? Self.identity(of: uid) else { return false }
        return TenantSocketFilesystem.groups(of: identity).contains(group.pointee.gr_gid)
    }

    /// One tenant's row: identity, endpoints, state, counters, and each Argo tunnel's state and Globus grant's expiry.
    private func status(of entry: Entry) async -> JSON {
        var object: JSONObject = [
            "user": .string(entry.identity.name),
            "uid": JSON(Int(entry.identity.uid)),
            "socket": .string(entry.socketPath),
            "port": entry.port.map { JSON($0) } ?? .null,
            "enabled_at": JSON(entry.enabledAt),
            "state": .string(entry.failure == nil ? (entry.server == nil ? "stopped" : "serving") : "failed"),
        ]
        if let failure = entry.failure { object["error"] = .string(failure) }
        for (key, value) in entry.statistics.json { object[key] = value }
        if let wiring = entry.wiring {
            var tunnels = JSONObject()
            for name in wiring.argo.tunnels.keys.sorted() {
                let tunnel = await wiring.argo.tunnels[name]!.status()
                var summary: JSONObject = ["state": tunnel["state"] ?? .null]
                if let message = tunnel["message"] { summary["message"] = message }
                tunnels[name] = .object(summary)
            }
            if !tunnels.isEmpty { object["tunnels"] = .object(tunnels) }
            var grants = JSONObject()
            for name in wiring.grants.grants.keys.sorted() {
                let grant = await wiring.grants.grants[name]!.status()
                var summary: JSONObject = ["state": grant["state"] ?? .null]
                if let expiry = grant["expires_at"] { summary["expires_at"] = expiry }
                grants[name] = .object(summary)
            }
            if !grants.isEmpty { object["grants"] = .object(grants) }
        }
        return .object(object)
    }

    static func identity(of uid: UInt32) throws(SystemControlError) -> UserIdentity {
        guard let entry = getpwuid(uid) else {
            throw SystemControlError(status: .forbidden, code: "unknown_user", message: "uid \(uid) has no account in the password database")
        }
        return UserIdentity(
            name: String(cString: entry.pointee.pw_name), uid: uid, gid: entry.pointee.pw_gid,
            home: String(cString: entry.pointee.pw_dir))
    }

    // MARK: - Starting tenants

    /// Builds a tenant's token, socket, port and server; a failure is recorded in the entry, never thrown.
    private func start(identity: UserIdentity, enabledAt: Int) async -> Entry {
        var entry = Entry(identity: identity, socketPath: identity.defaultSocketPath, enabledAt: enabledAt)
        var tenantLogger = logger
        tenantLogger[metadataKey: "tenant.uid"] = "\(identity.uid)"
        let directory = tenantDirectory(identity.uid)
        let token: TenantTokenStore
        do {
            try SecretFile.ensurePrivateDirectory(directory)
            token = try TenantTokenStore(path: directory + "/token")
        } catch {
            entry.failure = "state directory \(directory): \(error)"
            tenantLogger.error("tenant failed to start", metadata: ["error": "\(entry.failure!)"])
            return entry
        }
        let unix: HTTPFrontListener
        let tcp: HTTPFrontListener
        do {
            (unix, tcp) = try await openTenantListeners(
                identity: identity, socketPath: entry.socketPath, directory: directory, logger: tenantLogger)
        } catch {
            entry.failure = "\(error)"
            tenantLogger.error("tenant failed to start", metadata: ["error": "\(entry.failure!)"])
            return entry
        }
        let port = tcp.port ?? 0
        entry.port = port
        let tenant = Tenant(userName: identity.name, uid: identity.uid, config: config.forSystemTenant(account: identity.name, home: identity.home), token: token)
        await tenant.setEndpoints(socketPath: entry.socketPath, port: port)
        let wiring = TenantWiring.systemTenant(
            identity: identity, config: config, tenant: tenant, token: token, stateDirectory: directory,
            runtimeBase: options.tenantRuntimeBase, upstream: upstream, logger: tenantLogger)
        let server = HTTPFrontServer(
            listeners: [unix, tcp], handler: CountingHandler(inner: wiring.served, statistics: entry.statistics), logger: tenantLogger)
        await tenant.transition(to: .serving(since: Int(time(nil))))
        entry.tenant = tenant
        entry.server = server
        entry.handler = wiring.handler
        entry.wiring = wiring
        commandSink.yield(.serve(uid: identity.uid, server: server, wiring: wiring))
        return entry
    }

    // MARK: - Persistence

    private func restore() async {
        guard let bytes = (try? SecretFile.read(registryPath)).flatMap({ $0 }) else { return }
        guard let json = try? JSON.parse(bytes), case .array(let items)? = json["tenants"] else {
            logger.error("the tenant registry is unreadable; starting with no tenants", metadata: ["path": "\(registryPath)"])
            return
        }
        for item in items {
            guard let number = item["uid"]?.intValue, let uid = UInt32(exactly: number) else { continue }
            guard let identity = try? Self.identity(of: uid) else {
                logger.warning("a persisted tenant's account no longer exists; skipped", metadata: ["tenant.uid": "\(uid)"])
                continue
            }
            let enabledAt = item["enabled_at"]?.intValue ?? startedAt
            do {
                // The admin's policy may have changed while the daemon was down: ask PAM again.
                try options.pam.check(user: identity.name)
            } catch {
                logger.notice("a persisted tenant is now refused by PAM; not started", metadata: ["tenant.uid": "\(uid)", "reason": "\(error.code)"])
                forgetStoredSockets(uid: uid)
                entries[uid] = Entry(identity: identity, socketPath: identity.defaultSocketPath, enabledAt: enabledAt, failure: error.message)
                continue
            }
            entries[uid] = await start(identity: identity, enabledAt: enabledAt)
        }
        logger.info("restored tenants", metadata: ["count": "\(entries.count)"])
    }

    private func persist() {
        let items: [JSON] = entries.values.sorted { $0.identity.uid < $1.identity.uid }.map {
            ["uid": JSON(Int($0.identity.uid)), "user": .string($0.identity.name), "enabled_at": JSON($0.enabledAt)]
        }
        let document: JSON = ["tenants": .array(items)]
        do {
            try SecretFile.write(document.bytes + [10], to: registryPath)
        } catch {
            logger.error("cannot save the tenant registry", metadata: ["path": "\(registryPath)", "error": "\(error)"])
        }
    }
}

/// Answers the control socket: enable, disable and the tenants' status, each for the peer's uid.
struct SystemControlHandler: GatewayRequestHandler {
    let daemon: SystemDaemon

    func handle(_ request: GatewayRequest, writer: some ResponseWriter) async {
        guard case .unixSocket(let uid) = request.origin else {
            await answer(writer, .failure(SystemControlError(status: .forbidden, code: "not_permitted", message: "the caller cannot be identified")))
            return
        }
        let result: Result<JSON, SystemControlError>
        switch (request.method, request.path) {
        case (.POST, "/rosetta/v1/enable"):
            do { result = .success(try await daemon.enable(uid: uid)) } catch { result = .failure(error) }
        case (.POST, "/rosetta/v1/disable"):
            do { result = .success(try await daemon.disable(uid: uid)) } catch { result = .failure(error) }
        case (.GET, "/metrics"):
            let counts = await daemon.tenantCounts()
            GatewayMetrics.process.tenants(enabled: counts.enabled, active: counts.active)
            await ObservedHandler<SystemControlHandler>.writeMetrics(to: writer)
            return
        case (.GET, "/rosetta/v1/tenants"), (.GET, "/rosetta/v1/status"):
            do { result = .success(try await daemon.statusReport(forPeer: uid)) } catch { result = .failure(error) }
        default:
            result = .failure(SystemControlError(status: .notFound, code: "not_found", message: "no control route \(request.method) \(request.path)"))
        }
        await answer(writer, result)
    }

    private func answer(_ writer: some ResponseWriter, _ result: Result<JSON, SystemControlError>) async {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        switch result {
        case .success(let json):
            try? await writer.writeWhole(status: .ok, headers: headers, body: json.bytes)
        case .failure(let error):
            let body: JSON = ["error": ["code": .string(error.code), "message": .string(error.message)]]
            try? await writer.writeWhole(status: error.status, headers: headers, body: body.bytes)
        }
    }
}
