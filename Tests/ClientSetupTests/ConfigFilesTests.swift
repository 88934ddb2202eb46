import Foundation
import Testing
@testable import ClientSetup

/// A fresh temporary home directory.
func temporaryHome() throws -> String {
    let path = NSTemporaryDirectory() + "rosetta-clients-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func mode(_ path: String) throws -> Int {
    (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
}

@Suite("Config files: atomic write, backup, undo, diff")
struct ConfigFilesTests {
    @Test("Setup keeps the first backup, keeps the mode, and undo restores the original byte for byte")
    func backupAndUndo() throws {
        let home = try temporaryHome()
        defer { try? FileManager.default.removeItem(atPath: home) }
        let path = home + "/.claude/settings.json"
        try FileManager.default.createDirectory(atPath: home + "/.claude", withIntermediateDirectories: true)
        let original = try fixture("claude-settings.json")
        try original.write(toFile: path, atomically: false, encoding: .utf8)
        chmod(path, 0o640)
        let client = ClaudeCodeClient()
        let merged = try client.merge(existing: original, context: context)
        #expect(try ConfigFiles.apply(merged, to: path) == .written(backupPath: path + ".rosetta-backup"))
        #expect(try mode(path) == 0o640)
        #expect(try String(contentsOfFile: path + ".rosetta-backup", encoding: .utf8) == original)
        #expect(try ConfigFiles.apply(merged, to: path) == .unchanged)
        #expect(client.check(home: home, endpoint: endpoint) == .ok)
        // A second setup (another port) must not replace the original backup.
        let moved = try client.merge(existing: merged, context: ClientSetupContext(endpoint: ClientEndpoint(port: 4000), model: "m", models: []))
        _ = try ConfigFiles.apply(moved, to: path)
        #expect(try String(contentsOfFile: path + ".rosetta-backup", encoding: .utf8) == original)
        #expect(try ConfigFiles.undo(path) == .restored(from: path + ".rosetta-backup"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(original.utf8))
        #expect(try mode(path) == 0o640)
        #expect(!FileManager.default.fileExists(atPath: path + ".rosetta-backup"))
        #expect(throws: ClientSetupError.self) { try ConfigFiles.undo(path) }
    }

    @Test("A file setup created is removed by undo; new parent directories are 0700")
    func createdFile() throws {
        let home = try temporaryHome()
        defer { try? FileManager.default.removeItem(atPath: home) }
        let client = CodexClient()
        let path = try #require(client.configPath(home: home))
        #expect(client.check(home: home, endpoint: endpoint) == .notConfigured)
        _ = try ConfigFiles.apply(try client.merge(existing: nil, context: context), to: path)
        #expect(try mode(home + "/.codex") == 0o700)
        #expect(try mode(path) == 0o600)
        #expect(client.check(home: home, endpoint: endpoint) == .ok)
        #expect(try ConfigFiles.undo(path) == .removed)
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(!FileManager.default.fileExists(atPath: ConfigFiles.createdMarkerPath(for: path)))
    }

    @Test("A symlinked dotfile is updated at its target and stays a link")
    func symlinkedFile() throws {
        let home = try temporaryHome()
        defer { try? FileManager.default.removeItem(atPath: home) }
        try FileManager.default.createDirectory(atPath: home + "/dotfiles", withIntermediateDirectories: true)
        let target = home + "/dotfiles/aider.conf.yml"
        let original = try fixture("aider.conf.yml")
        try original.write(toFile: target, atomically: false, encoding: .utf8)
        let path = home + "/.aider.conf.yml"
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: "dotfiles/aider.conf.yml")
        _ = try ConfigFiles.apply(try AiderClient().merge(existing: original, context: context), to: path)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: path) == "dotfiles/aider.conf.yml")
        #expect(try String(contentsOfFile: target, encoding: .utf8).contains("openai-api-base: http://127.0.0.1:21987/v1"))
        #expect(AiderClient().check(home: home, endpoint: endpoint) == .ok)
        _ = try ConfigFiles.undo(path)
        #expect(try String(contentsOfFile: target, encoding: .utf8) == original)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: path) == "dotfiles/aider.conf.yml")
    }

    @Test("The check of an unreadable file says why")
    func unreadable() throws {
        let home = try temporaryHome()
        defer { try? FileManager.default.removeItem(atPath: home) }
        try FileManager.default.createDirectory(atPath: home + "/.hermes", withIntermediateDirectories: true)
        try "model: [unclosed\n".write(toFile: home + "/.hermes/config.yaml", atomically: false, encoding: .utf8)
        guard case .unreadable(let reason) = HermesClient().check(home: home, endpoint: endpoint) else {
            Issue.record("expected unreadable")
            return
        }
        #expect(reason.contains("not valid YAML"))
        #expect(SDKClient.openAI.check(home: home, endpoint: endpoint) == .notConfigured)
    }

    @Test("Unified diff: hunks with context, as diff -u prints them")
    func unifiedDiff() {
        let before = (1...12).map { "line \($0)" }.joined(separator: "\n") + "\n"
        let after = before.replacingOccurrences(of: "line 6\n", with: "line six\n") + "line 13\n"
        let diff = UnifiedDiff.make(before: before, after: after, fromName: "a", toName: "b")
        #expect(diff == """
            --- a
            +++ b
            @@ -3,10 +3,11 @@
             line 3
             line 4
             line 5
            -line 6
            +line six
             line 7
             line 8
             line 9
             line 10
             line 11
             line 12
            +line 13

            """)
        // Changes more than six unchanged lines apart get separate hunks.
        let far = before.replacingOccurrences(of: "line 2\n", with: "line two\n").replacingOccurrences(of: "line 11\n", with: "line eleven\n")
        #expect(UnifiedDiff.make(before: before, after: far, fromName: "a", toName: "b").components(separatedBy: "\n@@ ").count == 3)
        #expect(UnifiedDiff.make(before: "", after: "x\n", fromName: "/dev/null", toName: "b") == "--- /dev/null\n+++ b\n@@ -0,0 +1 @@\n+x\n")
        #expect(UnifiedDiff.make(before: "same\n", after: "same\n", fromName: "a", toName: "b").isEmpty)
    }
}
