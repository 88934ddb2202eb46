import Testing
@testable import Supervisor

@Suite("Derived port")
struct DerivedPortTests {
    @Test func formulaIsStableAndInRange() {
        // FNV-1a-64("alice") = 0x... ; the port must not depend on the machine or the run.
        #expect(DerivedPort.fnv1a64("".utf8) == 0xcbf2_9ce4_8422_2325)
        #expect(DerivedPort.fnv1a64("a".utf8) == 0xaf63_dc4c_8601_ec8c)
        let port = DerivedPort.base(forUser: "alice")
        #expect(port == 10000 + Int(DerivedPort.fnv1a64("alice".utf8) % 22000))
        for name in ["alice", "bob", "root", "x", String(repeating: "z", count: 64)] {
            #expect((10000..<32000).contains(DerivedPort.base(forUser: name)))
        }
        #expect(DerivedPort.base(forUser: "alice") != DerivedPort.base(forUser: "bob"))
    }

    @Test func probingIsDeterministicAndWraps() {
        let candidates = DerivedPort.candidates(forUser: "alice")
        let base = DerivedPort.base(forUser: "alice")
        #expect(candidates.count == DerivedPort.probeCount)
        #expect(candidates.first == base)
        #expect(candidates.allSatisfy { (10000..<32000).contains($0) })
        #expect(Set(candidates).count == candidates.count)
        let recorded = DerivedPort.candidates(forUser: "alice", recorded: base + 3)
        #expect(recorded.first == base + 3)
        #expect(recorded.count == DerivedPort.probeCount)
        #expect(DerivedPort.candidates(forUser: "alice", recorded: 80).first == base)
    }
}
