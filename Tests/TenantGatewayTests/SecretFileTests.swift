import Glibc
import Testing
@testable import TenantGateway

@Suite("Secret files and the tenant token")
struct SecretFileTests {
    func temporaryDirectory() throws -> String {
        var template = Array("/tmp/rosetta-secret-XXXXXX".utf8CString)
        let path = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        try #require(path != nil)
        return String(cString: path!)
    }

    func mode(_ path: String) -> mode_t {
        var info = stat()
        lstat(path, &info)
        return info.st_mode & 0o777
    }

    @Test func tokenIsCreatedPrivateAndReused() throws {
        let directory = try temporaryDirectory()
        let path = directory + "/token"
        let first = try TenantTokenStore(path: path)
        #expect(mode(path) == 0o600)
        #expect(first.token.hasPrefix("rst-") && first.token.count == 47)
        let second = try TenantTokenStore(path: path)
        #expect(second.token == first.token)
    }

    @Test func tokenComparisonAndRotation() throws {
        let store = try TenantTokenStore(path: try temporaryDirectory() + "/token")
        let old = store.token
        #expect(store.matches(Substring(old).utf8))
        // The last character changed (to one it is not: a random token may itself end in "x").
        let altered = old.dropLast() + (old.last == "x" ? "y" : "x")
        #expect(!store.matches(Substring(altered).utf8))
        #expect(!store.matches(Substring(old + "x").utf8))
        let fresh = try store.rotate()
        #expect(fresh != old)
        #expect(!store.matches(Substring(old).utf8))
        #expect(store.matches(Substring(fresh).utf8))
        #expect(try TenantTokenStore(path: store.path).token == fresh)
    }

    @Test func refusesSymlinksAndLooseModes() throws {
        let directory = try temporaryDirectory()
        let target = directory + "/elsewhere"
        try SecretFile.write(Array("secret".utf8), to: target)
        symlink(target, directory + "/link")
        #expect(throws: SecretFileError.self) { try SecretFile.read(directory + "/link") }
        chmod(target, 0o644)
        #expect(throws: SecretFileError.self) { try SecretFile.read(target) }
    }

    @Test func writingReplacesASymlinkInsteadOfFollowingIt() throws {
        let directory = try temporaryDirectory()
        let victim = directory + "/victim"
        try SecretFile.write(Array("keep".utf8), to: victim)
        symlink(victim, directory + "/token")
        try SecretFile.write(Array("new".utf8), to: directory + "/token")
        #expect(try SecretFile.read(victim) == Array("keep".utf8))
        #expect(try SecretFile.read(directory + "/token") == Array("new".utf8))
    }

    @Test func privateDirectoryIsCreated0700() throws {
        let directory = try temporaryDirectory() + "/a/b"
        try SecretFile.ensurePrivateDirectory(directory)
        #expect(mode(directory) == 0o700)
    }
}
