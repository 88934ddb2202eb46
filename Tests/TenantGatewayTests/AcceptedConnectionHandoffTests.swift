import NIOCore
import NIOEmbedded
@testable import TenantGateway
import Testing

@Suite("Accepted connection hand-off")
struct AcceptedConnectionHandoffTests {
    private func prepared() throws -> AcceptedHTTPConnection {
        try HTTPFrontPipeline.configure(channel: EmbeddedChannel(), origin: .loopbackTCP, peer: nil, limits: HTTPFrontLimits())
    }

    @Test("each prepared connection is claimed exactly once")
    func claimedOnce() async throws {
        let handoff = AcceptedConnectionHandoff()
        let connection = try prepared()
        handoff.preparationStarted()
        handoff.preparationFinished(connection)
        #expect(handoff.claim(connection))
        #expect(!handoff.claim(connection))
        #expect(await handoff.unclaimedAfterPreparation().isEmpty)
    }

    @Test("a connection the accept stream never delivered is handed over after its preparation finishes")
    func unclaimedAreHandedOver() async throws {
        let handoff = AcceptedConnectionHandoff()
        let delivered = try prepared()
        let dropped = try prepared()
        let late = try prepared()
        for connection in [delivered, dropped] {
            handoff.preparationStarted()
            handoff.preparationFinished(connection)
        }
        handoff.preparationStarted()  // still being prepared when the listener closed
        #expect(handoff.claim(delivered))
        async let unclaimed = handoff.unclaimedAfterPreparation(waitingAtMost: .seconds(10))
        try await Task.sleep(for: .milliseconds(50))
        handoff.preparationFinished(late)
        let handedOver = await unclaimed.map { ObjectIdentifier($0.channel) }
        #expect(Set(handedOver) == [ObjectIdentifier(dropped.channel), ObjectIdentifier(late.channel)])
        #expect(!handoff.claim(dropped))
    }

    @Test("a refused connection is not handed over")
    func refusedIsForgotten() async {
        let handoff = AcceptedConnectionHandoff()
        handoff.preparationStarted()
        handoff.preparationFinished(nil)
        #expect(await handoff.unclaimedAfterPreparation(waitingAtMost: .milliseconds(100)).isEmpty)
    }
}
