import Synchronization

/// The tenant's client token: what a request on the loopback port must present.
///
/// It lives in `<state-dir>/token` (0600, replaced atomically); the in-memory copy is
/// guarded by a mutex so that checking it costs no actor hop on the request path.
package final class TenantTokenStore: Sendable {
    /// The file holding the token.
    package let path: String
    private let current: Mutex<[UInt8]>

    /// Loads the token from `path`, creating a new random one when the file does not exist.
    package init(path: String) throws(SecretFileError) {
        self.path = path
        if let existing = try SecretFile.read(path), let token = TenantTokenStore.validToken(existing) {
            current = Mutex(token)
        } else {
            let fresh = TenantTokenStore.generate()
            try SecretFile.write(fresh + [UInt8(ascii: "\n")], to: path)
            current = Mutex(fresh)
        }
    }

    /// The current token as text.
    package var token: String {
        current.withLock { String(decoding: $0, as: UTF8.self) }
    }

    /// Whether a presented credential equals the token, compared in constant time for equal lengths.
    package func matches(_ candidate: Substring.UTF8View) -> Bool {
        current.withLock { token in
            guard candidate.count == token.count else { return false }
            var difference: UInt8 = 0
            for (left, right) in zip(candidate, token) { difference |= left ^ right }
            return difference == 0
        }
    }

    /// Replaces the token with a new random one, on disk first, and returns it.
    package func rotate() throws(SecretFileError) -> String {
        let fresh = TenantTokenStore.generate()
        try SecretFile.write(fresh + [UInt8(ascii: "\n")], to: path)
        current.withLock { $0 = fresh }
        return String(decoding: fresh, as: UTF8.self)
    }

    /// A new token: `rst-` followed by 256 random bits in unpadded base64url.
    package static func generate() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var token = Array("rst-".utf8)
        // 43 characters of 6 bits each carry 258 bits of randomness.
        for _ in 0..<43 { token.append(alphabet[Int(generator.next(upperBound: UInt8(64)))]) }
        return token
    }

    /// The token in a file's contents when it looks like one (printable, no spaces, 16–512 bytes).
    private static func validToken(_ contents: [UInt8]) -> [UInt8]? {
        var token = contents
        while let last = token.last, last == 0x0A || last == 0x0D || last == 0x20 { token.removeLast() }
        guard (16...512).contains(token.count), token.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        return token
    }
}
