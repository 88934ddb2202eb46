import Logging
import NIOCore

/// Serves one tenant's HTTP fronts (its Unix socket and its loopback port) with one request handler.
///
/// `run()` runs one accept loop per listener, in the spirit of swift-nio's NIOTCPEchoServer: each
/// connection is served in a child task of a discarding task group and never throws, so one bad
/// connection cannot end the loop or touch another connection.
///
/// Shutting down is a drain: `drain(deadline:)` (or `startDraining(deadline:)` from synchronous
/// code such as a graceful-shutdown callback) closes the listening sockets at once, so new
/// connects are refused; idle keep-alive connections close; requests and streams in flight run
/// to completion, their connections closing after the response; whatever is still open at the
/// deadline is closed and its handler cancelled. `run()` returns when the last connection has
/// ended. Cancelling the task running `run()` stops everything at once, without a drain.
package actor HTTPFrontServer {
    private enum State {
        case ready
        case serving
        case draining(deadline: ContinuousClock.Instant)
        case finished
    }

    private enum Command: Sendable {
        case drain(deadline: ContinuousClock.Instant)
    }

    private let listeners: [HTTPFrontListener]
    private let handler: any GatewayRequestHandler
    private let logger: Logger
    private let commands: AsyncStream<Command>
    private let commandSink: AsyncStream<Command>.Continuation
    private var state = State.ready
    private var connections: [Int: AsyncStream<HTTPConnectionStateMachine.Event>.Continuation] = [:]
    private var nextConnectionID = 0

    /// Creates a server for bound listeners; nothing is accepted until `run()`.
    package init(listeners: [HTTPFrontListener], handler: some GatewayRequestHandler, logger: Logger = Logger(label: "rosettad.front")) {
        self.listeners = listeners
        self.handler = handler
        self.logger = logger
        (commands, commandSink) = AsyncStream<Command>.makeStream()
    }

    /// The number of connections being served now.
    package var openConnectionCount: Int {
        connections.count
    }

    /// Accepts and serves connections until a drain completes or the calling task is cancelled.
    ///
    /// Returns at once if the server already ran or was drained before it started.
    package func run() async {
        guard case .ready = state else { return }
        state = .serving
        let listeners = self.listeners
        await withTaskGroup(of: Void.self) { supervision in
            supervision.addTask { await self.superviseDrain() }
            await withDiscardingTaskGroup { accepting in
                for listener in listeners {
                    accepting.addTask { await self.acceptConnections(on: listener) }
                }
            }
            // Every listener is closed and every connection has ended.
            supervision.cancelAll()
        }
        commandSink.finish()
        state = .finished
        logger.info("HTTP front stopped")
    }

    /// Starts a drain and returns once the listening sockets are closed (new connects are refused from then on).
    ///
    /// In-flight requests and streams may finish until `deadline`; then the remaining connections
    /// are closed. `run()` returns when all connections have ended. A second drain keeps the first deadline.
    package func drain(deadline: ContinuousClock.Instant) async {
        await beginDrain(deadline: deadline)
        commandSink.yield(.drain(deadline: deadline))
    }

    /// Starts a drain from synchronous code (for example a graceful-shutdown callback); see `drain(deadline:)`.
    package nonisolated func startDraining(deadline: ContinuousClock.Instant) {
        commandSink.yield(.drain(deadline: deadline))
    }

    // MARK: - Accepting

    private nonisolated func acceptConnections(on listener: HTTPFrontListener) async {
        await withDiscardingTaskGroup { connections in
            do {
                try await listener.serverChannel.executeThenClose { inbound in
                    for try await connection in inbound where listener.handoff.claim(connection) {
                        connections.addTask {
                            await self.serve(connection, listener: listener)
                        }
                    }
                }
                // Connections prepared as the socket closed never reached the stream: serve them too.
                let unclaimed = await listener.handoff.unclaimedAfterPreparation()
                if !unclaimed.isEmpty {
                    logger.info(
                        "serving connections accepted as the listener closed",
                        metadata: ["front": "\(listener.front.logName)", "connections": "\(unclaimed.count)"]
                    )
                }
                for connection in unclaimed {
                    connections.addTask {
                        await self.serve(connection, listener: listener)
                    }
                }
            } catch is CancellationError {
                // run() was cancelled: stopping is what was asked for.
            } catch {
                logger.error(
                    "the accept loop ended with an error",
                    metadata: ["front": "\(listener.front.logName)", "error": "\(error)"]
                )
            }
        }
    }

    private nonisolated func serve(_ connection: AcceptedHTTPConnection, listener: HTTPFrontListener) async {
        var connectionLogger = logger
        connectionLogger[metadataKey: "front"] = "\(listener.front.logName)"
        if let peer = connection.peer {
            connectionLogger[metadataKey: "peer.uid"] = "\(peer.uid)"
            connectionLogger[metadataKey: "peer.pid"] = "\(peer.pid)"
        }
        let id = await register(connection.eventSink)
        connectionLogger.trace("connection accepted")
        await HTTPConnectionDriver(connection: connection, handler: handler, limits: listener.limits, logger: connectionLogger).run()
        await unregister(id)
        connectionLogger.trace("connection closed")
    }

    private func register(_ eventSink: AsyncStream<HTTPConnectionStateMachine.Event>.Continuation) -> Int {
        let id = nextConnectionID
        nextConnectionID += 1
        connections[id] = eventSink
        switch state {
        case .draining, .finished:
            eventSink.yield(.drainRequested)
        case .ready, .serving:
            break
        }
        return id
    }

    private func unregister(_ id: Int) {
        connections[id] = nil
    }

    // MARK: - Draining

    private nonisolated func superviseDrain() async {
        for await command in commands {
            switch command {
            case .drain(let deadline):
                await beginDrain(deadline: deadline)
                do {
                    try await Task.sleep(until: deadline, clock: .continuous)
                } catch {
                    return  // every connection ended before the deadline
                }
                await forceCloseConnections()
            }
        }
    }

    private func beginDrain(deadline: ContinuousClock.Instant) async {
        switch state {
        case .ready:
            state = .finished
        case .serving:
            state = .draining(deadline: deadline)
        case .draining, .finished:
            return
        }
        logger.info("draining: no new connections; in-flight requests may finish", metadata: ["connections": "\(connections.count)"])
        for eventSink in connections.values {
            eventSink.yield(.drainRequested)
        }
        for listener in listeners {
            await listener.close()
        }
    }

    private func forceCloseConnections() {
        guard !connections.isEmpty else { return }
        logger.warning("drain deadline reached; closing the remaining connections", metadata: ["connections": "\(connections.count)"])
        for eventSink in connections.values {
            eventSink.yield(.forceCloseRequested)
        }
    }
}
