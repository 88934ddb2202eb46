import Testing
import TenantGateway
@testable import Globus

@Suite("PKCE and SHA-256")
struct PKCETests {
    @Test func sha256MatchesKnownVectors() {
        func hex(_ bytes: [UInt8]) -> String { bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() }
        #expect(hex(SHA256.hash(Array("".utf8))) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(hex(SHA256.hash(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(hex(SHA256.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)))
            == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(hex(SHA256.hash([UInt8](repeating: UInt8(ascii: "a"), count: 1000)))
            == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }

    @Test func challengeIsTheRFC7636Example() {
        // RFC 7636 appendix B.
        let pair = PKCEPair(verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        #expect(pair.challenge == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    }

    @Test func freshVerifiersAreLongRandomAndURLSafe() {
        let first = PKCEPair(), second = PKCEPair()
        #expect(first.verifier.count == 43)
        #expect(first.verifier != second.verifier)
        #expect(first.verifier.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
    }

    @Test func authorizeURLCarriesEveryParameter() {
        let settings = GlobusSettings(
            authURL: "https://auth.globus.org/", clientID: "58fdd3bc-e1c3-4ce5-80ea-8d6b87cfb944",
            resourceServer: "681c10cc-f684-4540-bcd7-0b4df3bc26ef",
            scope: "https://auth.globus.org/scopes/681c10cc-f684-4540-bcd7-0b4df3bc26ef/action_all")
        let pair = PKCEPair(verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        let url = settings.authorizeURL(pkce: pair, state: "s1")
        #expect(url.hasPrefix("https://auth.globus.org/v2/oauth2/authorize?client_id=58fdd3bc-e1c3-4ce5-80ea-8d6b87cfb944&"))
        for part in [
            "redirect_uri=https%3A%2F%2Fauth.globus.org%2Fv2%2Fweb%2Fauth-code",
            "scope=https%3A%2F%2Fauth.globus.org%2Fscopes%2F681c10cc-f684-4540-bcd7-0b4df3bc26ef%2Faction_all",
            "state=s1", "response_type=code", "code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method=S256", "access_type=offline",
        ] {
            #expect(url.contains(part), "missing \(part)")
        }
    }
}

@Suite("Globus token selection")
struct GlobusTokenTests {
    let gateway = "681c10cc-f684-4540-bcd7-0b4df3bc26ef"
    let scope = "https://auth.globus.org/scopes/681c10cc-f684-4540-bcd7-0b4df3bc26ef/action_all"

    @Test func picksTheGatewayTokenFromOtherTokens() throws {
        let response = try JSON.parse("""
            {"access_token":"openid-token","scope":"openid","resource_server":"auth.globus.org","expires_in":172800,
             "token_type":"Bearer","refresh_token":"r-top","other_tokens":[{"access_token":"GW","scope":"\(scope)",
             "resource_server":"\(gateway)","expires_in":172800,"token_type":"Bearer","refresh_token":"R"}]}
            """)
        let token = try GlobusToken.select(from: response, resourceServer: gateway, scope: scope, now: 1000)
        #expect(token.accessToken == "GW")
        #expect(token.refreshToken == "R")
        #expect(token.expiresAt == 1000 + 172800)
    }

    @Test func picksATopLevelTokenAndFallsBackToScope() throws {
        let topLevel = try JSON.parse(#"{"access_token":"T","scope":"x","resource_server":"\#(gateway)","expires_in":10,"other_tokens":[]}"#)
        #expect(try GlobusToken.select(from: topLevel, resourceServer: gateway, scope: scope, now: 0).accessToken == "T")
        let byScope = try JSON.parse(#"{"access_token":"S","scope":"\#(scope)","resource_server":"other","expires_in":10}"#)
        #expect(try GlobusToken.select(from: byScope, resourceServer: gateway, scope: scope, now: 0).accessToken == "S")
    }

    @Test func missingGatewayTokenIsAnErrorWithoutSecrets() throws {
        let response = try JSON.parse(#"{"access_token":"SECRET","scope":"openid","resource_server":"auth.globus.org","expires_in":10}"#)
        #expect {
            try GlobusToken.select(from: response, resourceServer: gateway, scope: scope, now: 0)
        } throws: { error in
            let message = (error as? GlobusToken.ParseError)?.message ?? ""
            return message.contains(gateway) && !message.contains("SECRET")
        }
    }

    @Test func storedFormRoundTrips() throws {
        let token = GlobusToken(accessToken: "a", refreshToken: "r", expiresAt: 12.5, lifetime: 10, resourceServer: gateway, scope: scope)
        #expect(try GlobusToken(stored: token.stored) == token)
    }
}

@Suite("Grant state machine")
struct GrantStateMachineTests {
    func token(_ access: String, refresh: String? = "R", expiresAt: Double = 1000, lifetime: Double = 100) -> GlobusToken {
        GlobusToken(accessToken: access, refreshToken: refresh, expiresAt: expiresAt, lifetime: lifetime, resourceServer: "rs", scope: "s")
    }

    @Test func noGrantFailsNamingTheLoginCommand() {
        var machine = GrantStateMachine()
        guard case .fail(let reason) = machine.tokenRequested(now: 0) else { Issue.record("expected a failure"); return }
        #expect(reason.contains("rosetta login alcf"))
    }

    @Test func validTokenIsUsedUntilTheMarginThenOneRefreshRuns() {
        var machine = GrantStateMachine(stored: token("A"))
        #expect(machine.tokenRequested(now: 800) == .use("A"))
        // Margin is lifetime / 10 = 10 s: at 991 the first caller refreshes, others keep using A.
        #expect(machine.tokenRequested(now: 991) == .refresh(refreshToken: "R"))
        #expect(machine.tokenRequested(now: 992) == .use("A"))
        // Once expired, everyone waits for the one refresh.
        #expect(machine.tokenRequested(now: 1001) == .wait)
        machine.refreshSucceeded(token("B", refresh: nil, expiresAt: 2000))
        #expect(machine.tokenRequested(now: 1001) == .use("B"))
        #expect(machine.token?.refreshToken == "R", "the old refresh token is kept when none comes back")
    }

    @Test func refusedRefreshNeedsLoginTransientKeepsTheToken() {
        var refused = GrantStateMachine(stored: token("A"))
        _ = refused.tokenRequested(now: 995)
        refused.refreshFailed(.refused("invalid_grant"))
        guard case .fail(let reason) = refused.tokenRequested(now: 995) else { Issue.record("expected a failure"); return }
        #expect(reason.contains("rosetta login alcf") && reason.contains("invalid_grant"))

        var transient = GrantStateMachine(stored: token("A"))
        _ = transient.tokenRequested(now: 995)
        transient.refreshFailed(.transient("connection refused"))
        #expect(transient.tokenRequested(now: 996) == .refresh(refreshToken: "R"))
    }

    @Test func unauthorizedRefreshesOnceAndLaterCallersUseTheNewToken() {
        var machine = GrantStateMachine(stored: token("A"))
        #expect(machine.unauthorized(accessToken: "A", demandsLogin: false) == .refresh(refreshToken: "R"))
        #expect(machine.unauthorized(accessToken: "A", demandsLogin: false) == .wait)
        machine.refreshSucceeded(token("B", expiresAt: 5000))
        #expect(machine.unauthorized(accessToken: "A", demandsLogin: false) == .use("B"))
    }

    @Test func policyUnauthorizedDemandsALogin() {
        var machine = GrantStateMachine(stored: token("A"))
        guard case .fail(let reason) = machine.unauthorized(accessToken: "A", demandsLogin: true) else {
            Issue.record("expected a failure")
            return
        }
        #expect(reason.contains("30 days") && reason.contains("rosetta login alcf"))
    }

    @Test func expiredWithoutRefreshTokenNeedsLogin() {
        var machine = GrantStateMachine(stored: token("A", refresh: nil))
        #expect(machine.tokenRequested(now: 995) == .use("A"))
        guard case .fail = machine.tokenRequested(now: 1001) else { Issue.record("expected a failure"); return }
        guard case .needsLogin = machine.state else { Issue.record("expected needs-login"); return }
    }
}
