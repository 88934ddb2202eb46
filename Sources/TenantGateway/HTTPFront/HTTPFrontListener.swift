#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// A bound listening socket of one tenant's HTTP front, ready to be served by an `HTTPFrontServer`.
///
/// Create one with `bindUnixSocket`, `bindLoopbackTCP` or `adoptListeningSocket`. Binding happens
/// at creation, so an occupied address fails here (code `addressInUse`) and the bound port is known
/// before serving starts.
package struct HTTPFrontListener: Sendable {
    /// Which front a listener serves, which decides how connections are vetted and what origin requests carry.
    package enum Front: Sendable, Equatable {
        /// A Unix-domain socket: only connections whose `SO_PEERCRED` uid is `ownerUID` are served.
        case unixSocket(ownerUID: UInt32)
        /// The loopback TCP port: every local user can connect, so the handler checks the token.
        case loopbackTCP
        /// A shared Unix socket (the system daemon's control socket): every uid is served, and each
        /// request's origin carries the peer's `SO_PEERCRED` uid for the handler to authorise.
        case anyPeerUnixSocket

        /// The short name used in log metadata (`front`).
        package var logName: String {
            switch self {
            case .unixSocket: "unix"
            case .loopbackTCP: "tcp"
            case .anyPeerUnixSocket: "control"
            }
        }
    }

    /// The front this listener serves.
    package let front: Front
    /// The limits enforced on every connection accepted here.
    package let limits: HTTPFrontLimits
    /// The address the socket is bound to.
    package let localAddress: SocketAddress?
    let serverChannel: NIOAsyncChannel<AcceptedHTTPConnection, Never>
    /// Every prepared connection until a serving task claims it (see `AcceptedConnectionHandoff`).
    let handoff: AcceptedConnectionHandoff

    /// The bound TCP port (the real one when port 0 was asked for); `nil` for a Unix socket.
    package var port: Int? {
        if case .loopbackTCP = front { return localAddress?.port }
        return nil
    }

    /// Binds the tenant's Unix socket: a private 0700 directory, any stale socket removed, the socket made 0600.
    ///
    /// Connections from any uid other than `ownerUID` are closed as soon as they are accepted.
    /// - Throws: `HTTPFrontError` — `socketDirectoryInsecure` or `socketDirectoryUnavailable` for the
    ///   directory, `socketPathOccupied` when a non-socket is in the way, `addressInUse` when another
    ///   server listens there, `invalidSocketPath`, `socketPermissions` or `bindFailed` otherwise.
    package static func bindUnixSocket(
        path: String,
        ownerUID: UInt32,
        limits: HTTPFrontLimits = HTTPFrontLimits(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "rosettad.front")
    ) async throws(HTTPFrontError) -> HTTPFrontListener {
        try UnixSocketFilesystem.preparePrivateDirectory(forSocketAt: path)
        try UnixSocketFilesystem.removeStaleSocket(at: path)
        let front = Front.unixSocket(ownerUID: ownerUID)
        let handoff = AcceptedConnectionHandoff()
        let channel: NIOAsyncChannel<AcceptedHTTPConnection, Never>
        do {
            channel = try await makeBootstrap(group: eventLoopGroup).bind(
                unixDomainSocketPath: path,
                cleanupExistingSocketFile: false,
                childChannelInitializer: childInitializer(front: front, limits: limits, handoff: handoff, logger: logger)
            )
        } catch {
            throw bindError(error, address: path)
        }
        do {
            try UnixSocketFilesystem.restrictSocketToOwner(at: path)
        } catch {
            try? await channel.channel.close()
            throw error
        }
        logger.info("listening", metadata: ["front": "unix", "socket.path": "\(path)"])
        return HTTPFrontListener(front: front, limits: limits, localAddress: channel.channel.localAddress, serverChannel: channel, handoff: handoff)
    }

    /// Binds `127.0.0.1:<port>` with `SO_REUSEADDR`; port 0 picks a free port, readable from `port`.
    /// - Throws: `HTTPFrontError` with code `addressInUse` when the port is taken (the caller may probe
    ///   the next one), `bindFailed` otherwise.
    package static func bindLoopbackTCP(
        port: Int,
        limits: HTTPFrontLimits = HTTPFrontLimits(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "rosettad.front")
    ) async throws(HTTPFrontError) -> HTTPFrontListener {
        let front = Front.loopbackTCP
        let handoff = AcceptedConnectionHandoff()
        let channel: NIOAsyncChannel<AcceptedHTTPConnection, Never>
        do {
            channel = try await makeBootstrap(group: eventLoopGroup).bind(
                host: "127.0.0.1",
                port: port,
                childChannelInitializer: childInitializer(front: front, limits: limits, handoff: handoff, logger: logger)
            )
        } catch {
            throw bindError(error, address: "127.0.0.1:\(port)")
        }
        let listener = HTTPFrontListener(front: front, limits: limits, localAddress: channel.channel.localAddress, serverChannel: channel, handoff: handoff)
        logger.info("listening", metadata: ["front": "tcp", "tcp.port": "\(listener.port ?? port)"])
        return listener
    }

    /// Serves an already bound and listening socket, such as one passed by systemd socket activation.
    ///
    /// The descriptor is taken over: it is closed when the listener closes. For a Unix socket,
    /// give the owner uid whose connections are served; the socket's file and directory are left as they are.
    /// - Throws: `HTTPFrontError` with code `bindFailed` when the descriptor cannot be adopted.
    package static func adoptListeningSocket(
        _ descriptor: CInt,
        front: Front,
        limits: HTTPFrontLimits = HTTPFrontLimits(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "rosettad.front")
    ) async throws(HTTPFrontError) -> HTTPFrontListener {
        let handoff = AcceptedConnectionHandoff()
        let channel: NIOAsyncChannel<AcceptedHTTPConnection, Never>
        do {
            channel = try await ServerBootstrap(group: eventLoopGroup)
                .childChannelOption(.autoRead, value: false)
                .bind(
                NIOBSDSocket.Handle(descriptor),
                childChannelInitializer: childInitializer(front: front, limits: limits, handoff: handoff, logger: logger)
            )
        } catch {
            throw HTTPFrontError(.bindFailed, "cannot serve the inherited socket descriptor \(descriptor)", cause: error)
        }
        logger.info("listening on an inherited socket", metadata: ["front": "\(front.logName)", "socket.fd": "\(descriptor)"])
        return HTTPFrontListener(front: front, limits: limits, localAddress: channel.channel.localAddress, serverChannel: channel, handoff: handoff)
    }

    /// Closes the listening socket: new connections are refused; accepted ones are not affected.
    ///
    /// A Unix socket this listener bound by path has its socket file removed (SwiftNIO does so on close);
    /// an adopted descriptor's file is left alone.
    package func close() async {
        try? await serverChannel.channel.close()
    }

    private static func makeBootstrap(group: any EventLoopGroup) -> ServerBootstrap {
        ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 256)
            // A connection reads nothing until its serving task adopts it (see `AcceptedHTTPConnection`).
            .childChannelOption(.autoRead, value: false)
    }

    private static func bindError(_ error: any Error, address: String) -> HTTPFrontError {
        if let error = error as? HTTPFrontError { return error }
        if let error = error as? IOError, error.errnoCode == EADDRINUSE {
            return HTTPFrontError(.addressInUse, "\(address) is already in use", cause: error)
        }
        if error is SocketAddressError {
            return HTTPFrontError(.invalidSocketPath, "\(address) is not a usable socket address", cause: error)
        }
        return HTTPFrontError(.bindFailed, "cannot listen on \(address)", cause: error)
    }

    /// The child channel initializer: vets the peer (Unix socket), then installs the HTTP pipeline.
    ///
    /// A connection that fails here is closed at once; the accept loop never sees it.
    private static func childInitializer(
        front: Front,
        limits: HTTPFrontLimits,
        handoff: AcceptedConnectionHandoff,
        logger: Logger
    ) -> @Sendable (any Channel) -> EventLoopFuture<AcceptedHTTPConnection> {
        { channel in
            handoff.preparationStarted()
            let accepted: EventLoopFuture<AcceptedHTTPConnection>
            switch front {
            case .loopbackTCP:
                accepted = channel.eventLoop.makeCompletedFuture {
                    try HTTPFrontPipeline.configure(channel: channel, origin: .loopbackTCP, peer: nil, limits: limits)
                }
            case .anyPeerUnixSocket:
                #if os(Linux)
                accepted = PeerCredentials.read(from: channel).flatMapThrowing { peer in
                    try HTTPFrontPipeline.configure(channel: channel, origin: .unixSocket(peerUID: peer.uid), peer: peer, limits: limits)
                }
                #else
                accepted = channel.eventLoop.makeFailedFuture(
                    HTTPFrontError(.peerRefused, "peer credentials cannot be checked on this platform")
                )
                #endif
            case .unixSocket(let ownerUID):
                #if os(Linux)
                accepted = PeerCredentials.read(from: channel).flatMapThrowing { peer in
                    guard peer.uid == ownerUID else {
                        logger.warning(
                            "refused a connection from another user",
                            metadata: ["front": "unix", "peer.uid": "\(peer.uid)", "peer.pid": "\(peer.pid)", "owner.uid": "\(ownerUID)"]
                        )
                        throw HTTPFrontError(.peerRefused, "uid \(peer.uid) is not the socket's owner \(ownerUID)")
                    }
                    return try HTTPFrontPipeline.configure(
                        channel: channel,
                        origin: .unixSocket(peerUID: peer.uid),
                        peer: peer,
                        limits: limits
                    )
                }
                #else
                logger.warning("refused a Unix-socket connection: peer credentials are only checked on Linux", metadata: ["front": "unix"])
                accepted = channel.eventLoop.makeFailedFuture(
                    HTTPFrontError(.peerRefused, "peer credentials cannot be checked on this platform")
                )
                #endif
            }
            return accepted.always { result in
                switch result {
                case .success(let connection):
                    handoff.preparationFinished(connection)
                case .failure:
                    handoff.preparationFinished(nil)
                    channel.close(promise: nil)
                }
            }
        }
    }
}
