#if canImport(Glibc)
import Glibc
#endif
import Logging
import ServiceLifecycle
import TenantGateway

/// Where user mode reads its config and keeps its socket and state; `nil` means the default under the user's home.
package struct UserModeOptions: Sendable {
    /// The config file.
    package var configPath: String?
    /// The Unix socket.
    package var socketPath: String?
    /// The loopback port; `nil` derives it from the user name.
    package var port: Int?
    /// The state directory (token, recorded port).
    package var stateDirectory: String?

    /// Creates options.
    package init(configPath: String?, socketPath: String?, port: Int?, stateDirectory: String?) {
        self.configPath = configPath
        self.socketPath = socketPath
        self.port = port
        self.stateDirectory = stateDirectory
    }
}

/// A start-up failure in user mode, with the exit status to use.
struct UserModeError: Error, CustomStringConvertible {
    /// The message for the user.
    var message: String
    /// `sysexits`-style status: 78 for configuration problems, 71 for system ones.
    var exitStatus: Int32

    var description: String { message }
}

/// User mode: the single-tenant case of the supervisor, for the invoking user without root or systemd.
package enum UserMode {
    /// Starts the tenant, serves until SIGTERM or SIGINT, drains, and returns the process exit status.
    package static func run(options: UserModeOptions, environment: [String: String]) async -> Int32 {
        var logger = Logger(label: "rosettad")
        logger.logLevel = environment["ROSETTAD_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        let identity = UserIdentity.current(environment: environment)
        logger[metadataKey: "tenant.uid"] = "\(identity.uid)"
        do {
            let prepared = try prepare(options: options, identity: identity, environment: environment, logger: logger)
            return try await serve(prepared, logger: logger)
        } catch let error as UserModeError {
            printError(error.message)
            return error.exitStatus
        } catch {
            printError("\(error)")
            return 1
        }
    }

    /// Everything user mode resolved before binding.
    struct Prepared {
        var identity: UserIdentity
        var configPath: String
        var config: GatewayConfig
        var socketPath: String
        var stateDirectory: String
        var token: TenantTokenStore
        var explicitPort: Int?
    }

    static func prepare(options: UserModeOptions, identity: UserIdentity, environment: [String: String], logger: Logger) throws -> Prepared {
        let configPath = options.configPath ?? identity.defaultConfigPath
        let stateDirectory = options.stateDirectory ?? identity.defaultStateDirectory
        let text = try ConfigFile.loadOrCreateDefault(at: configPath, logger: logger)
        let config: GatewayConfig
        do {
            config = try GatewayConfig.parse(yaml: text, file: configPath, environment: environment)
        } catch {
            throw UserModeError(message: "configuration error: \(error)", exitStatus: 78)
        }
        if !config.identities.isEmpty {
            logger.notice("'identities' applies to system mode only; user mode sends each provider's own 'user'", metadata: ["path": "\(configPath)"])
        }
        let token: TenantTokenStore
        do {
            try SecretFile.ensurePrivateDirectory(stateDirectory)
            token = try TenantTokenStore(path: stateDirectory + "/token")
        } catch {
            throw UserModeError(message: "state directory \(stateDirectory): \(error)", exitStatus: 73)
        }
        return Prepared(
            identity: identity, configPath: configPath, config: config,
            socketPath: options.socketPath ?? identity.defaultSocketPath,
            stateDirectory: stateDirectory, token: token, explicitPort: options.port)
    }

    static func serve(_ prepared: Prepared, logger: Logger) async throws -> Int32 {
        let upstream = UpstreamHTTPClient(logger: logger)
        defer { upstream.shutdown() }
        let tenant = Tenant(userName: prepared.identity.name, uid: prepared.identity.uid, config: prepared.config, token: prepared.token)
        // User mode: ssh runs as the invoking user, the tunnels' sockets live in the state directory.
        let wiring = TenantWiring(
            config: prepared.config, tenant: tenant, token: prepared.token, stateDirectory: prepared.stateDirectory,
            tunnelDirectory: prepared.stateDirectory, spawnIdentity: nil, upstream: upstream, logger: logger, servesMetrics: true)
        let limits = prepared.config.limits

        let unixListener: HTTPFrontListener
        do {
            unixListener = try await HTTPFrontListener.bindUnixSocket(
                path: prepared.socketPath, ownerUID: prepared.identity.uid, limits: limits, logger: logger)
        } catch {
            throw UserModeError(message: "cannot listen on \(prepared.socketPath): \(error)", exitStatus: 71)
        }
        let tcpListener: HTTPFrontListener
        do {
            tcpListener = try await bindLoopback(prepared, limits: limits, logger: logger)
        } catch {
            await unixListener.close()
            throw error
        }
        let port = tcpListener.port ?? 0
        await tenant.setEndpoints(socketPath: prepared.socketPath, port: port)

        printListening(prepared, port: port)
        let server = HTTPFrontServer(listeners: [unixListener, tcpListener], handler: wiring.served, logger: logger)
        let service = TenantService(tenant: tenant, server: server, wiring: wiring, grace: prepared.config.shutdownGrace, logger: logger)
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: service)] + [MetricsScrapeService.forConfig(prepared.config, logger: logger)].compactMap { $0 },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
        logger.info("stopped")
        return 0
    }

    /// Binds the loopback port: exactly `--port` when given, else the derived candidates in order, recording the one bound.
    static func bindLoopback(_ prepared: Prepared, limits: HTTPFrontLimits, logger: Logger) async throws -> HTTPFrontListener {
        let portFile = prepared.stateDirectory + "/port"
        if let port = prepared.explicitPort {
            do {
                return try await HTTPFrontListener.bindLoopbackTCP(port: port, limits: limits, logger: logger)
            } catch {
                throw UserModeError(message: "cannot listen on 127.0.0.1:\(port): \(error)", exitStatus: 71)
            }
        }
        let recorded = (try? SecretFile.read(portFile)).flatMap { $0 }.flatMap { Int(String(decoding: $0, as: UTF8.self).filter(\.isNumber)) }
        let candidates = DerivedPort.candidates(forUser: prepared.identity.name, recorded: recorded)
        for port in candidates {
            do {
                let listener = try await HTTPFrontListener.bindLoopbackTCP(port: port, limits: limits, logger: logger)
                if port != recorded { try? SecretFile.write(Array("\(port)\n".utf8), to: portFile) }
                if port != candidates.first { logger.notice("derived port taken; probed the next", metadata: ["port": "\(port)"]) }
                return listener
            } catch where error.code == .addressInUse {
                continue
            } catch {
                throw UserModeError(message: "cannot listen on 127.0.0.1:\(port): \(error)", exitStatus: 71)
            }
        }
        throw UserModeError(
            message: "every port probed for \(prepared.identity.name) is taken (\(candidates.map(String.init).joined(separator: ", "))); pass --port",
            exitStatus: 71)
    }

    static func printListening(_ prepared: Prepared, port: Int) {
        let models = prepared.config.models.count
        var lines = [
            "rosettad \(RosettaVersion.current) serving \(prepared.identity.name) in user mode",
            "  unix socket  \(prepared.socketPath)  (no token needed)",
            "  loopback     http://127.0.0.1:\(port)  (token: `rosetta token`)",
            "  config       \(prepared.configPath)  (\(models) model\(models == 1 ? "" : "s"))",
        ]
        if models == 0 { lines.append("  no models are configured yet: add providers and models to the config, then restart") }
        writeAll(lines.joined(separator: "\n") + "\n", to: STDOUT_FILENO)
    }

    static func printError(_ message: String) {
        writeAll("rosettad: \(message)\n", to: STDERR_FILENO)
    }
}

/// Writes text to a file descriptor unbuffered, so it is visible at once to whoever reads the pipe.
func writeAll(_ text: String, to descriptor: Int32) {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
        let count = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        if count < 0 {
            if errno == EINTR { continue }
            return
        }
        bytes = bytes.dropFirst(count)
    }
}

/// Runs a tenant's fronts and tunnels as a lifecycle service: serve until graceful shutdown, drain within the
/// grace period, then stop the tunnels (requests drain before their tunnels close).
struct TenantService: Service {
    let tenant: Tenant
    let server: HTTPFrontServer
    let wiring: TenantWiring
    let grace: Duration
    let logger: Logger

    func run() async throws {
        await tenant.transition(to: .serving(since: Int(time(nil))))
        let server = self.server
        await withGracefulShutdownHandler {
            await wiring.whileTunnelsRun { await server.run() }
        } onGracefulShutdown: {
            logger.notice("shutting down: no new connections; finishing requests in flight", metadata: ["grace.seconds": "\(grace.components.seconds)"])
            server.startDraining(deadline: .now + grace)
        }
        await tenant.transition(to: .stopped)
    }
}

/// Reads the config file, writing the commented default first when it does not exist.
enum ConfigFile {
    static func loadOrCreateDefault(at path: String, logger: Logger) throws -> String {
        if access(path, F_OK) != 0 {
            let directory = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
            do {
                if !directory.isEmpty { try SecretFile.ensurePrivateDirectory(directory) }
                try SecretFile.write(Array(GatewayConfig.defaultFileText.utf8), to: path)
            } catch {
                throw UserModeError(message: "cannot write the default config to \(path): \(error)", exitStatus: 73)
            }
            logger.notice("wrote the default config", metadata: ["path": "\(path)"])
        }
        guard let file = fopen(path, "r") else {
            throw UserModeError(message: "cannot read the config \(path): \(String(cString: strerror(errno)))", exitStatus: 78)
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count <= 0 { break }
            bytes.append(contentsOf: buffer[0..<count])
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw UserModeError(message: "the config \(path) is not UTF-8 text", exitStatus: 78)
        }
        return text
    }
}
