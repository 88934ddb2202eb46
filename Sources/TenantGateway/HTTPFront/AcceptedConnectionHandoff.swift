import NIOCore
import Synchronization

/// Holds the connections a listener accepted and prepared until a serving task claims each one.
///
/// SwiftNIO hands a prepared connection to the accept loop through the server channel's async
/// stream, but a connection whose preparation (the peer-credential check, the hop between event
/// loops) completes after the listening socket closed is dropped by that stream, open and unread.
/// During a drain with systemd's fd store such a client has already sent its request: it would be
/// reset when the process exits. The hand-off keeps every prepared connection here as well, so the
/// server serves the ones the stream dropped (`unclaimedAfterPreparation()`), each exactly once.
final class AcceptedConnectionHandoff: Sendable {
    private struct State {
        var preparing = 0
        var prepared: [ObjectIdentifier: AcceptedHTTPConnection] = [:]
    }

    private let state = Mutex(State())

    /// Notes that a just-accepted connection is being prepared.
    func preparationStarted() {
        state.withLock { $0.preparing += 1 }
    }

    /// Notes that a preparation finished: `connection` is ready to serve, or `nil` when it was refused and closed.
    func preparationFinished(_ connection: AcceptedHTTPConnection?) {
        state.withLock { state in
            state.preparing -= 1
            if let connection { state.prepared[ObjectIdentifier(connection.channel)] = connection }
        }
    }

    /// Takes `connection` for serving; `false` when another task already took it.
    func claim(_ connection: AcceptedHTTPConnection) -> Bool {
        state.withLock { $0.prepared.removeValue(forKey: ObjectIdentifier(connection.channel)) != nil }
    }

    /// After the listening socket closed: waits (bounded) for preparations under way, then takes every unclaimed connection.
    func unclaimedAfterPreparation(waitingAtMost limit: Duration = .seconds(2)) async -> [AcceptedHTTPConnection] {
        let deadline = ContinuousClock.now + limit
        while state.withLock({ $0.preparing > 0 }), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        return state.withLock { state in
            defer { state.prepared.removeAll() }
            return Array(state.prepared.values)
        }
    }
}
