import NIOCore
import NIOHTTP1

/// The protocol logic of one HTTP/1.1 connection on the front, as a value type without I/O.
///
/// The connection driver feeds it what happened (bytes arrived, a decoded request part, the
/// handler finished, a timer fired, a drain began) and performs the actions it returns, in order.
/// It decides when a request is complete, when limits are exceeded, which timer runs, whether a
/// connection is kept alive, and when the handler must be cancelled because the client left.
package struct HTTPConnectionStateMachine: Sendable {
    /// The one timer a connection runs at a time.
    package enum TimerKind: Sendable, Hashable {
        /// No request on an open keep-alive connection: close quietly when it fires.
        case idle
        /// A request has started but is not complete: answer 408 when it fires.
        case requestRead
        /// The final response is out; wait for the client to close before tearing down.
        case linger
    }

    /// Identifies one arming of the timer, so that a timer firing after it was replaced is ignored.
    package struct TimerID: Sendable, Hashable {
        /// Which timer this is.
        package var kind: TimerKind
        /// Increases with every arming on the connection.
        package var generation: Int

        /// Creates a timer identity.
        package init(kind: TimerKind, generation: Int) {
            self.kind = kind
            self.generation = generation
        }
    }

    /// Why the inbound side could not be decoded.
    package enum InboundFailure: Sendable, Hashable {
        /// The request line or header fields exceed the header limit.
        case headersTooLarge
        /// The bytes are not a valid HTTP/1.x request.
        case malformed
    }

    /// How the handler left the response when it returned.
    package enum ResponseOutcome: Sendable, Hashable {
        /// The response was written completely; `closeConnection` when its framing requires closing (HTTP/1.0 stream, HEAD stream).
        case complete(closeConnection: Bool)
        /// The response was cut off (a write failed or the stream was never finished): the connection must close.
        case incomplete
    }

    /// Why the front answers a request itself instead of handing it to the handler.
    package enum Rejection: Sendable, Hashable {
        /// The declared or received body exceeds the body limit (413).
        case bodyTooLarge
        /// The request head exceeds the header limit (431).
        case headersTooLarge
        /// The request cannot be parsed (400).
        case malformed
        /// The client did not finish its request in time (408).
        case timedOut
    }

    /// An error response the front writes before closing the connection.
    package struct RejectionResponse: Sendable, Equatable {
        /// What is wrong with the request.
        package var rejection: Rejection
        /// The client's dialect, for the error envelope.
        package var dialect: Dialect
        /// The HTTP version to answer with.
        package var version: HTTPVersion

        /// Creates a rejection response.
        package init(rejection: Rejection, dialect: Dialect, version: HTTPVersion) {
            self.rejection = rejection
            self.dialect = dialect
            self.version = version
        }
    }

    /// A fully received request, ready for the handler.
    package struct CompleteRequest: Sendable, Equatable {
        /// The request line and headers.
        package var head: HTTPRequestHead
        /// The whole body.
        package var body: [UInt8]

        /// Creates a complete request.
        package init(head: HTTPRequestHead, body: [UInt8]) {
            self.head = head
            self.body = body
        }
    }

    /// Something that happened on the connection.
    package enum Event: Sendable {
        /// Raw bytes of a new request arrived (before they are decoded).
        case requestBytesArrived
        /// The decoder produced a request part.
        case requestPart(HTTPServerRequestPart)
        /// The decoder failed; the inbound side is finished.
        case inboundFailed(InboundFailure)
        /// The client closed the connection, or it failed.
        case inboundClosed
        /// The handler returned.
        case handlerFinished(ResponseOutcome)
        /// A timer fired.
        case timerFired(TimerID)
        /// The server is draining: finish what is in flight, then close.
        case drainRequested
        /// The drain deadline passed: close now.
        case forceCloseRequested
    }

    /// What the driver must do, in order.
    package enum Action: Sendable, Equatable {
        /// Arm the connection's timer, replacing any armed one.
        case armTimer(TimerID, after: Duration)
        /// Disarm the connection's timer.
        case disarmTimer
        /// Send `100 Continue` so the client sends its body.
        case sendContinue(HTTPVersion)
        /// Hand the request to the handler in a task of its own.
        case startHandler(CompleteRequest)
        /// Cancel the running handler: the client is gone or the drain deadline passed.
        case cancelHandler
        /// Write an error response carrying `connection: close`.
        case reject(RejectionResponse)
        /// Finish the output side once pending writes are flushed (half-close), then wait for the client to close.
        case closeOutput
        /// Close the connection now.
        case close
    }

    private enum State {
        case idle
        case awaitingHead
        case receivingBody(HTTPRequestHead)
        case responding(keepAlive: Bool)
        case lingering
        case closed
    }

    private let limits: HTTPFrontLimits
    private var state: State = .idle
    private var body: [UInt8] = []
    private var isDraining = false
    /// Whether a request has been taken in on this connection (a fresh connection owes its client one answer).
    private var hasTakenRequest = false
    private var closeAfterResponse = false
    private var sawRequestBytesWhileResponding = false
    private var pipelined: [HTTPServerRequestPart] = []
    private var pipelinedBytes = 0
    private var discardingPipelined = false
    private var timerGeneration = 0
    private var armedTimer: TimerID?

    /// Creates the state machine of a freshly accepted connection.
    package init(limits: HTTPFrontLimits) {
        self.limits = limits
    }

    /// Whether the response now being produced must announce `connection: close` regardless of the request.
    package var willCloseAfterResponse: Bool {
        isDraining || closeAfterResponse
    }

    /// Whether the connection has reached its end.
    package var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    /// The actions for a connection that was just accepted: the idle timer starts.
    package mutating func connectionOpened() -> [Action] {
        [arm(.idle, after: limits.idleTimeout)]
    }

    /// Takes in one event and returns the actions it calls for.
    package mutating func receive(_ event: Event) -> [Action] {
        switch event {
        case .requestBytesArrived:
            return requestBytesArrived()
        case .requestPart(let part):
            return receivePart(part)
        case .inboundFailed(let failure):
            return inboundFailed(failure)
        case .inboundClosed:
            return inboundClosed()
        case .handlerFinished(let outcome):
            return handlerFinished(outcome)
        case .timerFired(let timer):
            return timerFired(timer)
        case .drainRequested:
            return drainRequested()
        case .forceCloseRequested:
            return forceCloseRequested()
        }
    }

    // MARK: - Events

    private mutating func requestBytesArrived() -> [Action] {
        switch state {
        case .idle:
            state = .awaitingHead
            return [arm(.requestRead, after: limits.requestReadTimeout)]
        case .responding:
            sawRequestBytesWhileResponding = true
            return []
        case .awaitingHead, .receivingBody, .lingering, .closed:
            return []
        }
    }

    private mutating func receivePart(_ part: HTTPServerRequestPart) -> [Action] {
        switch state {
        case .responding:
            return bufferPipelined(part)
        case .lingering, .closed:
            return []
        case .idle, .awaitingHead, .receivingBody:
            return consume(part)
        }
    }

    private mutating func inboundFailed(_ failure: InboundFailure) -> [Action] {
        let rejection: Rejection = failure == .headersTooLarge ? .headersTooLarge : .malformed
        switch state {
        case .idle, .awaitingHead:
            return reject(rejection, head: nil)
        case .receivingBody(let head):
            return reject(rejection, head: head)
        case .responding:
            // The response under way is still owed; nothing more can be read after it.
            closeAfterResponse = true
            dropPipelined()
            return []
        case .lingering, .closed:
            return []
        }
    }

    private mutating func inboundClosed() -> [Action] {
        switch state {
        case .closed:
            return []
        case .responding:
            state = .closed
            return [disarm(), .cancelHandler, .close]
        case .idle, .awaitingHead, .receivingBody, .lingering:
            state = .closed
            return [disarm(), .close]
        }
    }

    private mutating func handlerFinished(_ outcome: ResponseOutcome) -> [Action] {
        guard case .responding(let keepAlive) = state else { return [] }
        switch outcome {
        case .incomplete:
            state = .closed
            return [.close]
        case .complete(let closeConnection):
            if closeConnection || !keepAlive || isDraining || closeAfterResponse {
                state = .lingering
                return [.closeOutput, arm(.linger, after: limits.closeLingerTimeout)]
            }
            var actions: [Action]
            if sawRequestBytesWhileResponding || !pipelined.isEmpty {
                state = .awaitingHead
                actions = [arm(.requestRead, after: limits.requestReadTimeout)]
            } else {
                state = .idle
                actions = [arm(.idle, after: limits.idleTimeout)]
            }
            sawRequestBytesWhileResponding = false
            actions += replayPipelined()
            return actions
        }
    }

    private mutating func timerFired(_ timer: TimerID) -> [Action] {
        guard timer == armedTimer else { return [] }
        armedTimer = nil
        switch (timer.kind, state) {
        case (.idle, .idle):
            state = .closed
            return [.close]
        case (.requestRead, .awaitingHead):
            return reject(.timedOut, head: nil)
        case (.requestRead, .receivingBody(let head)):
            return reject(.timedOut, head: head)
        case (.linger, .lingering):
            state = .closed
            return [.close]
        default:
            return []
        }
    }

    private mutating func drainRequested() -> [Action] {
        isDraining = true
        switch state {
        case .idle where !hasTakenRequest:
            // The client connected before the drain and its first request may be on the wire: answer it
            // (with `connection: close`) if it arrives within the request-read timeout, else close quietly.
            return [arm(.idle, after: min(limits.idleTimeout, limits.requestReadTimeout))]
        case .idle:
            state = .closed
            return [disarm(), .close]
        case .awaitingHead, .receivingBody, .responding, .lingering, .closed:
            return []
        }
    }

    private mutating func forceCloseRequested() -> [Action] {
        switch state {
        case .closed:
            return []
        case .responding:
            state = .closed
            return [disarm(), .cancelHandler, .close]
        case .idle, .awaitingHead, .receivingBody, .lingering:
            state = .closed
            return [disarm(), .close]
        }
    }

    // MARK: - Requests

    private mutating func consume(_ part: HTTPServerRequestPart) -> [Action] {
        switch (state, part) {
        case (.idle, .head(let head)):
            // A request replayed from the pipeline buffer, or one whose bytes signal was missed.
            state = .awaitingHead
            return [arm(.requestRead, after: limits.requestReadTimeout)] + acceptHead(head)
        case (.awaitingHead, .head(let head)):
            return acceptHead(head)
        case (.receivingBody(let head), .body(let chunk)):
            guard body.count + chunk.readableBytes <= limits.maxBodyBytes else {
                return reject(.bodyTooLarge, head: head)
            }
            body.append(contentsOf: chunk.readableBytesView)
            return []
        case (.receivingBody(let head), .end):
            let request = CompleteRequest(head: head, body: body)
            body = []
            state = .responding(keepAlive: head.isKeepAlive)
            sawRequestBytesWhileResponding = false
            return [disarm(), .startHandler(request)]
        case (.receivingBody(let head), .head):
            return reject(.malformed, head: head)
        case (.idle, _), (.awaitingHead, _):
            return reject(.malformed, head: nil)
        case (.responding, _), (.lingering, _), (.closed, _):
            return []
        }
    }

    private mutating func acceptHead(_ head: HTTPRequestHead) -> [Action] {
        let declaredLength = head.headers.first(name: "content-length").flatMap { Int($0) }
        if let declaredLength, declaredLength > limits.maxBodyBytes {
            return reject(.bodyTooLarge, head: head)
        }
        hasTakenRequest = true
        state = .receivingBody(head)
        body = []
        if let declaredLength, declaredLength > 0 {
            body.reserveCapacity(declaredLength)
        }
        if Self.expectsContinue(head) {
            return [.sendContinue(head.version)]
        }
        return []
    }

    private mutating func reject(_ rejection: Rejection, head: HTTPRequestHead?) -> [Action] {
        let dialect = Dialect.ofClient(
            path: head?.uri ?? "",
            hasAnthropicVersionHeader: head?.headers.contains(name: "anthropic-version") ?? false
        )
        let version = head.map { $0.version.major == 1 ? $0.version : .http1_1 } ?? .http1_1
        state = .lingering
        body = []
        dropPipelined()
        return [
            .reject(RejectionResponse(rejection: rejection, dialect: dialect, version: version)),
            .closeOutput,
            arm(.linger, after: limits.closeLingerTimeout),
        ]
    }

    private static func expectsContinue(_ head: HTTPRequestHead) -> Bool {
        guard head.version.major == 1, head.version.minor >= 1 else { return false }
        return head.headers[canonicalForm: "expect"].contains { $0.lowercased() == "100-continue" }
    }

    // MARK: - Pipelining

    private mutating func bufferPipelined(_ part: HTTPServerRequestPart) -> [Action] {
        guard !discardingPipelined else { return [] }
        switch part {
        case .head(let head):
            pipelinedBytes += head.uri.utf8.count + head.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count }
        case .body(let chunk):
            pipelinedBytes += chunk.readableBytes
        case .end:
            break
        }
        pipelined.append(part)
        let queuedRequests = pipelined.reduce(0) { count, part in
            if case .head = part { return count + 1 }
            return count
        }
        if queuedRequests > limits.maxPipelinedRequests || pipelinedBytes > limits.maxBodyBytes + limits.maxHeaderBytes {
            // Too much sent ahead: answer the current request, then close.
            closeAfterResponse = true
            dropPipelined()
            discardingPipelined = true
        }
        return []
    }

    private mutating func replayPipelined() -> [Action] {
        var actions: [Action] = []
        var index = 0
        replay: while index < pipelined.count {
            switch state {
            case .idle, .awaitingHead, .receivingBody:
                let part = pipelined[index]
                index += 1
                if case .body(let chunk) = part { pipelinedBytes -= chunk.readableBytes }
                actions += consume(part)
            case .responding, .lingering, .closed:
                break replay
            }
        }
        if index >= pipelined.count {
            dropPipelined()
        } else {
            pipelined.removeFirst(index)
        }
        return actions
    }

    private mutating func dropPipelined() {
        pipelined = []
        pipelinedBytes = 0
    }

    // MARK: - Timer

    private mutating func arm(_ kind: TimerKind, after delay: Duration) -> Action {
        timerGeneration += 1
        let timer = TimerID(kind: kind, generation: timerGeneration)
        armedTimer = timer
        return .armTimer(timer, after: delay)
    }

    private mutating func disarm() -> Action {
        armedTimer = nil
        return .disarmTimer
    }
}
