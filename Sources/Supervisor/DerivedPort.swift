/// The loopback port a user's gateway listens on, derived from the user name so it is stable everywhere.
///
/// The base port is `10000 + FNV-1a-64(utf8(username)) mod 22000`, which lies in 10000…31999,
/// below Linux's ephemeral range. When it is taken, the next ports are probed in order
/// (wrapping inside the range), at most `probeCount` of them; the port actually bound is
/// recorded in the state directory and tried first next time.
package enum DerivedPort {
    /// The lowest port the formula yields.
    package static let lowest = 10000
    /// How many ports the formula spreads users over.
    package static let span = 22000
    /// How many consecutive ports are tried before giving up.
    package static let probeCount = 16

    /// The 64-bit FNV-1a hash of some bytes.
    package static func fnv1a64(_ bytes: some Sequence<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return hash
    }

    /// The base port for a user name.
    package static func base(forUser name: String) -> Int {
        lowest + Int(fnv1a64(name.utf8) % UInt64(span))
    }

    /// The ports to try, in order: the recorded one (when valid), then the base and its successors.
    package static func candidates(forUser name: String, recorded: Int? = nil) -> [Int] {
        let base = base(forUser: name)
        var ports: [Int] = []
        if let recorded, (lowest..<(lowest + span)).contains(recorded) { ports.append(recorded) }
        for offset in 0..<probeCount {
            let port = lowest + (base - lowest + offset) % span
            if !ports.contains(port) { ports.append(port) }
        }
        return ports
    }
}
