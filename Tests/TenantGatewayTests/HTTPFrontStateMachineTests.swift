import NIOCore
import NIOHTTP1
import TenantGateway
import Testing

@Suite("HTTP front connection state machine")
struct HTTPFrontStateMachineTests {
    typealias Machine = HTTPConnectionStateMachine

    private let limits = HTTPFrontLimits(
        maxBodyBytes: 10,
        maxHeaderBytes: 1024,
        requestReadTimeout: .seconds(3),
        idleTimeout: .seconds(7),
        closeLingerTimeout: .seconds(1),
        maxPipelinedRequests: 2
    )

    private func head(
        _ method: HTTPMethod = .POST,
        _ uri: String = "/v1/chat/completions",
        _ headers: [(String, String)] = []
    ) -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: HTTPHeaders(headers))
    }

    private func timer(in actions: [Machine.Action]) -> Machine.TimerID? {
        for case .armTimer(let id, _) in actions { return id }
        return nil
    }

    @Test("a new connection runs the idle timer, which closes it quietly")
    func idleTimeoutCloses() {
        var machine = Machine(limits: limits)
        let opened = machine.connectionOpened()
        let idle = try! #require(timer(in: opened))
        #expect(opened == [.armTimer(idle, after: .seconds(7))])
        #expect(idle.kind == .idle)
        #expect(machine.receive(.timerFired(idle)) == [.close])
        #expect(machine.isClosed)
    }

    @Test("the first bytes of a request switch to the read timer; a stalled head gets 408 in the default envelope")
    func readTimeoutBeforeHead() throws {
        var machine = Machine(limits: limits)
        let idle = try #require(timer(in: machine.connectionOpened()))
        let started = machine.receive(.requestBytesArrived)
        let read = try #require(timer(in: started))
        #expect(started == [.armTimer(read, after: .seconds(3))])
        // The replaced idle timer no longer counts.
        #expect(machine.receive(.timerFired(idle)) == [])
        let actions = machine.receive(.timerFired(read))
        let linger = try #require(timer(in: actions))
        #expect(
            actions == [
                .reject(.init(rejection: .timedOut, dialect: .openAIChat, version: .http1_1)),
                .closeOutput,
                .armTimer(linger, after: .seconds(1)),
            ]
        )
        #expect(machine.receive(.timerFired(linger)) == [.close])
    }

    @Test("a complete request starts the handler; keep-alive returns to the idle timer")
    func requestThenKeepAlive() throws {
        var machine = Machine(limits: limits)
        _ = machine.connectionOpened()
        _ = machine.receive(.requestBytesArrived)
        #expect(machine.receive(.requestPart(.head(head()))) == [])
        #expect(machine.receive(.requestPart(.body(ByteBuffer(string: "{\"a\":")))) == [])
        #expect(machine.receive(.requestPart(.body(ByteBuffer(string: "1}")))) == [])
        let started = machine.receive(.requestPart(.end(nil)))
        #expect(started == [.disarmTimer, .startHandler(.init(head: head(), body: Array("{\"a\":1}".utf8)))])
        let finished = machine.receive(.handlerFinished(.complete(closeConnection: false)))
        let idle = try #require(timer(in: finished))
        #expect(idle.kind == .idle)
        #expect(finished == [.armTimer(idle, after: .seconds(7))])
    }

    @Test("connection: close, an incomplete response or a drain ends the connection after the response")
    func closingAfterResponse() throws {
        var closing = Machine(limits: limits)
        _ = closing.connectionOpened()
        _ = closing.receive(.requestPart(.head(head(.GET, "/v1/models", [("connection", "close")]))))
        _ = closing.receive(.requestPart(.end(nil)))
        let actions = closing.receive(.handlerFinished(.complete(closeConnection: false)))
        #expect(actions.first == .closeOutput)
        #expect(timer(in: actions)?.kind == .linger)

        var broken = Machine(limits: limits)
        _ = broken.connectionOpened()
        _ = broken.receive(.requestPart(.head(head(.GET, "/v1/models"))))
        _ = broken.receive(.requestPart(.end(nil)))
        #expect(broken.receive(.handlerFinished(.incomplete)) == [.close])

        var draining = Machine(limits: limits)
        _ = draining.connectionOpened()
        _ = draining.receive(.requestPart(.head(head(.GET, "/v1/models"))))
        _ = draining.receive(.requestPart(.end(nil)))
        #expect(!draining.willCloseAfterResponse)
        #expect(draining.receive(.drainRequested) == [])
        #expect(draining.willCloseAfterResponse)
        #expect(draining.receive(.handlerFinished(.complete(closeConnection: false))).first == .closeOutput)
    }

    @Test("a drain closes a kept-alive idle connection at once")
    func drainClosesIdle() {
        var machine = Machine(limits: limits)
        _ = machine.connectionOpened()
        _ = machine.receive(.requestPart(.head(head(.GET, "/v1/models"))))
        _ = machine.receive(.requestPart(.end(nil)))
        _ = machine.receive(.handlerFinished(.complete(closeConnection: false)))
        #expect(machine.receive(.drainRequested) == [.disarmTimer, .close])
    }

    @Test("a drain answers the first request of a fresh connection, then closes; a silent one closes at the read timeout")
    func drainAnswersFreshConnection() throws {
        var answered = Machine(limits: limits)
        _ = answered.connectionOpened()
        let waiting = answered.receive(.drainRequested)
        #expect(!answered.isClosed)
        let timerID = try #require(timer(in: waiting))
        #expect(waiting.contains(.armTimer(timerID, after: .seconds(3))))
        _ = answered.receive(.requestBytesArrived)
        let started = answered.receive(.requestPart(.head(head(.GET, "/v1/models"))))
        #expect(started.isEmpty || !started.contains(.close))
        _ = answered.receive(.requestPart(.end(nil)))
        #expect(answered.willCloseAfterResponse)
        #expect(answered.receive(.handlerFinished(.complete(closeConnection: false))).first == .closeOutput)

        var silent = Machine(limits: limits)
        _ = silent.connectionOpened()
        let armed = try #require(timer(in: silent.receive(.drainRequested)))
        #expect(silent.receive(.timerFired(armed)) == [.close])
        #expect(silent.isClosed)
    }

    @Test("a declared or received body over the limit is rejected with 413 in the client's dialect")
    func bodyLimit() {
        var declared = Machine(limits: limits)
        _ = declared.connectionOpened()
        _ = declared.receive(.requestBytesArrived)
        let anthropicHead = head(.POST, "/v1/messages", [("content-length", "11")])
        let rejected = declared.receive(.requestPart(.head(anthropicHead)))
        #expect(rejected.first == .reject(.init(rejection: .bodyTooLarge, dialect: .anthropicMessages, version: .http1_1)))

        var received = Machine(limits: limits)
        _ = received.connectionOpened()
        _ = received.receive(.requestPart(.head(head(.POST, "/v1/chat/completions", [("transfer-encoding", "chunked")]))))
        #expect(received.receive(.requestPart(.body(ByteBuffer(string: "123456")))) == [])
        let overflow = received.receive(.requestPart(.body(ByteBuffer(string: "7890x"))))
        #expect(overflow.first == .reject(.init(rejection: .bodyTooLarge, dialect: .openAIChat, version: .http1_1)))
    }

    @Test("expect: 100-continue is answered when the body is within the limit")
    func expectContinue() {
        var machine = Machine(limits: limits)
        _ = machine.connectionOpened()
        let request = head(.POST, "/v1/messages", [("content-length", "2"), ("expect", "100-continue")])
        let actions = machine.receive(.requestPart(.head(request)))
        #expect(actions == [.armTimer(.init(kind: .requestRead, generation: 2), after: .seconds(3)), .sendContinue(.http1_1)])
    }

    @Test("header overflow and malformed input are answered with 431 and 400")
    func decoderFailures() {
        var overflow = Machine(limits: limits)
        _ = overflow.connectionOpened()
        _ = overflow.receive(.requestBytesArrived)
        #expect(
            overflow.receive(.inboundFailed(.headersTooLarge)).first
                == .reject(.init(rejection: .headersTooLarge, dialect: .openAIChat, version: .http1_1))
        )

        var malformed = Machine(limits: limits)
        _ = malformed.connectionOpened()
        _ = malformed.receive(.requestPart(.head(head(.POST, "/v1/messages", [("content-length", "5")]))))
        #expect(
            malformed.receive(.inboundFailed(.malformed)).first
                == .reject(.init(rejection: .malformed, dialect: .anthropicMessages, version: .http1_1))
        )
    }

    @Test("the client leaving while the handler runs cancels the handler")
    func clientGoneCancelsHandler() {
        var machine = Machine(limits: limits)
        _ = machine.connectionOpened()
        _ = machine.receive(.requestPart(.head(head())))
        _ = machine.receive(.requestPart(.end(nil)))
        #expect(machine.receive(.inboundClosed) == [.disarmTimer, .cancelHandler, .close])
        #expect(machine.receive(.handlerFinished(.incomplete)) == [])
    }

    @Test("the drain deadline cancels a running handler and closes")
    func forceCloseCancelsHandler() {
        var machine = Machine(limits: limits)
        _ = machine.connectionOpened()
        _ = machine.receive(.requestPart(.head(head())))
        _ = machine.receive(.requestPart(.end(nil)))
        _ = machine.receive(.drainRequested)
        #expect(machine.receive(.forceCloseRequested) == [.disarmTimer, .cancelHandler, .close])
    }

    @Test("pipelined requests wait for the response before them, then run in order")
    func pipelinedRequestsReplay() throws {
        var machine = Machine(limits: limits)
        _ = machine.connectionOpened()
        _ = machine.receive(.requestPart(.head(head(.GET, "/first"))))
        _ = machine.receive(.requestPart(.end(nil)))
        // The next request arrives while the first is being answered.
        #expect(machine.receive(.requestBytesArrived) == [])
        #expect(machine.receive(.requestPart(.head(head(.GET, "/second")))) == [])
        #expect(machine.receive(.requestPart(.end(nil))) == [])

        let actions = machine.receive(.handlerFinished(.complete(closeConnection: false)))
        let read = try #require(timer(in: actions))
        #expect(read.kind == .requestRead)
        #expect(actions.contains(.startHandler(.init(head: head(.GET, "/second"), body: []))))
        #expect(actions.last == .startHandler(.init(head: head(.GET, "/second"), body: [])))
    }

    @Test("too many pipelined requests close the connection after the current response")
    func pipelineOverflow() {
        var machine = Machine(limits: limits)
        _ = machine.connectionOpened()
        _ = machine.receive(.requestPart(.head(head(.GET, "/first"))))
        _ = machine.receive(.requestPart(.end(nil)))
        for index in 0..<3 {
            _ = machine.receive(.requestPart(.head(head(.GET, "/queued/\(index)"))))
            _ = machine.receive(.requestPart(.end(nil)))
        }
        #expect(machine.willCloseAfterResponse)
        let actions = machine.receive(.handlerFinished(.complete(closeConnection: false)))
        #expect(actions.first == .closeOutput)
        #expect(!actions.contains { if case .startHandler = $0 { true } else { false } })
    }
}
