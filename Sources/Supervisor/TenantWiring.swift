#if canImport(Glibc)
import Glibc
#endif
import Logging
import TenantGateway
import Tunnel

/// What one tenant serves with besides its fronts, built the same way in user and system mode: its Globus
/// grants, its Argo tunnels, the control routes for both, and the request handler over them.
struct TenantWiring: Sendable {
    /// The configuration the tenant serves (in system mode with its upstream identity resolved).
    let config: GatewayConfig
    /// The tenant's Globus grants.
    let grants: TenantGrants
    /// The tenant's Argo providers and their SSH tunnels.
    let argo: ArgoTunnels
    /// The tenant's request handler; a config reload swaps the handler it serves new requests with.
    let handler: ReloadableHandler
    /// The handler the fronts serve: `handler` observed for metrics and the request log (`requests.log` in the state directory).
    let served: ObservedHandler<ReloadableHandler>

    /// Builds the wiring: grants keep their files in `stateDirectory`, tunnels their sockets in `tunnelDirectory`.
    ///
    /// `spawnIdentity` is whom ssh runs as: `nil` in user mode, the tenant in system mode. `tailor` turns the
    /// daemon's config into the tenant's (the upstream identity in system mode), now and for every reloaded config;
    /// grants and tunnels keep the config the tenant started with.
    init(
        config shared: GatewayConfig, tailor: @escaping @Sendable (GatewayConfig) -> GatewayConfig = { $0 },
        tenant: Tenant, token: TenantTokenStore, stateDirectory: String, tunnelDirectory: String,
        spawnIdentity: SSHSpawnIdentity?, upstream: UpstreamHTTPClient, logger: Logger, servesMetrics: Bool = false
    ) {
        let config = tailor(shared)
        self.config = config
        let grants = TenantGrants(config: config, stateDirectory: stateDirectory, upstream: upstream, logger: logger)
        let argo = ArgoTunnels(
            config: config, stateDirectory: tunnelDirectory, spawnIdentity: spawnIdentity, modelLister: upstream, logger: logger)
        self.grants = grants
        self.argo = argo
        let hub = TenantControlHub(tenant: tenant, grants: grants)
        let providers = grants.providers.merging(argo.providers) { first, _ in first }
        let controlExtensions: [any ControlRouteExtension] = [hub, TunnelControlRoutes(tunnels: argo.tunnels)]
        handler = ReloadableHandler(config: shared) { shared in
            GatewayHandler(
                config: tailor(shared), upstream: upstream, token: token, control: hub, logger: logger,
                extraProviders: providers, controlExtensions: controlExtensions)
        }
        let observability = config.observability
        served = ObservedHandler(
            inner: handler,
            requestLog: observability.requestLog.enabled
                ? RequestLog(directory: stateDirectory, settings: observability.requestLog, logger: logger) : nil,
            metrics: GatewayMetrics(tenant: observability.metrics.perTenantLabels ? tenant.userName : nil),
            servesMetrics: servesMetrics,
            secrets: { [token.token] + config.providers.compactMap(\.apiKey) }, logger: logger)
    }

    /// The wiring of a system-mode tenant: the account's upstream identity, ssh run as the account, and the
    /// tunnels' sockets in the account's own 0700 directory `<runtimeBase>/<uid>` (see `TenantRuntimeDirectory`).
    ///
    /// When that directory cannot be prepared the tenant still serves, without tunnels' directories; the tunnels then
    /// fail on their first request with the reason in `rosetta tunnel status`, and the error is logged here.
    static func systemTenant(
        identity: UserIdentity, config shared: GatewayConfig, tenant: Tenant, token: TenantTokenStore, stateDirectory: String,
        runtimeBase: String, upstream: UpstreamHTTPClient, logger: Logger
    ) -> TenantWiring {
        let spawnIdentity = SSHSpawnIdentity(
            userID: identity.uid, groupID: identity.gid, supplementaryGroups: TenantSocketFilesystem.groups(of: identity),
            home: identity.home, userName: identity.name)
        let runtime = TenantRuntimeDirectory(base: runtimeBase, uid: identity.uid, gid: identity.gid)
        let wiring = TenantWiring(
            config: shared, tailor: { $0.forSystemTenant(account: identity.name, home: identity.home) }, tenant: tenant, token: token, stateDirectory: stateDirectory, tunnelDirectory: runtime.path,
            spawnIdentity: spawnIdentity, upstream: upstream, logger: logger)
        if !wiring.argo.tunnels.isEmpty {
            do {
                try runtime.prepare(subdirectories: wiring.argo.tunnels.values.map { tunnel in
                    // The socket is `<tunnel directory>/argo.sock`; the directory's last component is what to prepare.
                    String(tunnel.socketPath.split(separator: "/").dropLast().last ?? "")
                })
            } catch {
                logger.error("cannot prepare the tenant's tunnel directory", metadata: ["path": "\(runtime.path)", "error": "\(error)"])
            }
        }
        return wiring
    }

    /// Runs `body` (the tenant's fronts) with every tunnel supervised beside it; when `body` returns, ssh is stopped.
    func whileTunnelsRun(_ body: @Sendable () async -> Void) async {
        let tunnels = Array(argo.tunnels.values)
        guard !tunnels.isEmpty else {
            await body()
            return
        }
        await withTaskGroup(of: Void.self) { group in
            for tunnel in tunnels {
                group.addTask { await tunnel.run() }
            }
            await body()
            // Requests have drained: now the tunnels may close (cancelling `run()` stops ssh).
            group.cancelAll()
        }
    }
}

/// A system-mode tenant's runtime directory `<base>/<uid>`: owned by the tenant, mode 0700, on local disk
/// under a root-owned base (`/run/rosettad/tenants`), so root reaches the tunnels' sockets even when the
/// home is on NFS, and no other user can.
///
/// Root creates it and the subdirectories inside through descriptors (`mkdirat`, `openat` with `O_NOFOLLOW`,
/// `fchown`), so a link the tenant plants in their own directory is refused, never followed.
package struct TenantRuntimeDirectory: Sendable {
    /// The root-owned base directory (mode 0711).
    package let base: String
    /// The tenant's uid.
    package let uid: UInt32
    /// The tenant's primary gid.
    package let gid: UInt32

    /// `<base>/<uid>`.
    package var path: String { base + "/\(uid)" }

    /// Describes the runtime directory of `uid` (primary group `gid`) under `base`.
    package init(base: String, uid: UInt32, gid: UInt32) {
        self.base = base
        self.uid = uid
        self.gid = gid
    }

    /// Creates (or checks and repairs) the base, the tenant's directory and `subdirectories` inside it.
    package func prepare(subdirectories: [String]) throws(TenantSocketError) {
        try DaemonDirectory.ensureRootDirectory(base, mode: 0o711)
        let baseDescriptor = open(base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard baseDescriptor >= 0 else { throw TenantSocketFilesystem.failure("directory", "cannot open \(base)") }
        defer { close(baseDescriptor) }
        let own = try ownedDirectory(named: "\(uid)", in: baseDescriptor, shownAs: path)
        defer { close(own) }
        for name in subdirectories where !name.isEmpty && name != "." && name != ".." && !name.contains("/") {
            close(try ownedDirectory(named: name, in: own, shownAs: path + "/" + name))
        }
    }

    /// Creates `name` in `parent` if absent, then makes it a 0700 directory owned by the tenant; returns it opened.
    private func ownedDirectory(named name: String, in parent: Int32, shownAs shown: String) throws(TenantSocketError) -> Int32 {
        if mkdirat(parent, name, 0o700) != 0, errno != EEXIST {
            throw TenantSocketFilesystem.failure("directory", "cannot create \(shown)")
        }
        let descriptor = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else { throw TenantSocketFilesystem.failure("directory", "cannot open \(shown) (it must be a real directory)") }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            close(descriptor)
            throw TenantSocketFilesystem.failure("directory", "cannot inspect \(shown)")
        }
        guard status.st_uid == 0 || status.st_uid == uid else {
            close(descriptor)
            throw TenantSocketError(code: "directory", message: "\(shown) belongs to uid \(status.st_uid), not to uid \(uid)", errnoCode: nil)
        }
        guard fchown(descriptor, uid, gid) == 0, fchmod(descriptor, 0o700) == 0 else {
            let error = TenantSocketFilesystem.failure("directory", "cannot give \(shown) to uid \(uid) with mode 0700")
            close(descriptor)
            throw error
        }
        return descriptor
    }
}

/// Root-owned directories of the daemon itself.
enum DaemonDirectory {
    /// Creates `path` (and missing parents) as root; the last component must end up a root-owned directory with `mode`.
    static func ensureRootDirectory(_ path: String, mode: mode_t) throws(TenantSocketError) {
        var partial = ""
        for component in path.split(separator: "/") {
            partial += "/" + component
            if mkdir(partial, 0o755) != 0, errno != EEXIST {
                throw TenantSocketFilesystem.failure("directory", "cannot create \(partial)")
            }
        }
        var status = stat()
        guard lstat(path, &status) == 0 else { throw TenantSocketFilesystem.failure("directory", "cannot inspect \(path)") }
        guard status.st_mode & S_IFMT == S_IFDIR, status.st_uid == geteuid() else {
            throw TenantSocketError(code: "directory", message: "\(path) must be a directory owned by the daemon's user", errnoCode: nil)
        }
        if status.st_mode & 0o7777 != mode, chmod(path, mode) != 0 {
            throw TenantSocketFilesystem.failure("directory", "cannot set the mode of \(path)")
        }
    }
}

extension SystemModeOptions {
    /// Where system-mode tenants' runtime directories live: `tenants/` beside the control socket
    /// (`/run/rosettad/tenants` by default), a directory every user can traverse but not list.
    package var tenantRuntimeBase: String {
        let directory = controlSocketPath[..<(controlSocketPath.lastIndex(of: "/") ?? controlSocketPath.startIndex)]
        return (directory.isEmpty ? "" : String(directory)) + "/tenants"
    }
}
