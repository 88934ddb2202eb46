import ArgumentParser
import ClientSetup
import Foundation
import Supervisor
import TenantGateway

/// What the daemon tells rosetta about the user's gateway for configuring clients.
struct GatewayFacts {
    /// The loopback endpoint.
    var endpoint: ClientEndpoint
    /// Every model id the gateway serves, deduplicated, in the daemon's order.
    var models: [String]

    /// Asks the daemon for its port and models; `discover` lists discovered models too (which may first bring up a
    /// tunnel), otherwise only the configured ones are listed, at once (what `rosetta env` in a shell rc file needs).
    static func fetch(_ client: ControlClient, discover: Bool) throws -> GatewayFacts {
        let status = try call(client, method: "GET", path: "/rosetta/v1/status")
        guard let port = status["port"]?.intValue else {
            FileHandle.standardError.write(Data("rosetta: rosettad did not report a loopback port\n".utf8))
            throw ExitCode(1)
        }
        var models: [String] = []
        if discover {
            var listing = client
            listing.timeoutSeconds = 90  // listing may first discover models through a tunnel
            let answer = try call(listing, method: "GET", path: "/rosetta/v1/models")
            for provider in answer["providers"]?.arrayValue ?? [] {
                for model in provider["models"]?.arrayValue ?? [] {
                    guard let id = model["id"]?.stringValue, !models.contains(id) else { continue }
                    if model["overridden_by_config"]?.boolValue == true { continue }
                    models.append(id)
                }
            }
        }
        if models.isEmpty, let configured = status["models"]?.arrayValue {
            models = configured.compactMap(\.stringValue)
        }
        return GatewayFacts(endpoint: ClientEndpoint(port: port), models: models)
    }

    /// The client's context: `--model` if given (and served), else the client's preference among the live models.
    /// Without any model (none served, none requested) `rosetta env` still prints the rest (`requireModel` false).
    func context(for profile: any ClientProfile, model requested: String?, tokenCommand: [String], requireModel: Bool = true) throws -> ClientSetupContext {
        let model: String
        if let requested {
            if !models.isEmpty, !models.contains(requested) {
                FileHandle.standardError.write(Data("rosetta: warning: the gateway does not list \(requested) (see `rosetta models`)\n".utf8))
            }
            model = requested
        } else if let preferred = profile.preferredModel(among: models) {
            model = preferred
        } else if !requireModel {
            model = ""
        } else {
            FileHandle.standardError.write(Data("rosetta: the gateway serves no models yet; add some to its config or pass --model\n".utf8))
            throw ExitCode(1)
        }
        return ClientSetupContext(endpoint: endpoint, model: model, models: models, tokenCommand: tokenCommand)
    }
}

/// Runs a config step; its failure becomes the message on stderr and exit status 1.
func orExit<T>(_ step: () throws(ClientSetupError) -> T) throws -> T {
    let outcome: Result<T, ClientSetupError> = Result(catching: step)
    switch outcome {
    case .success(let value): return value
    case .failure(let error):
        FileHandle.standardError.write(Data("rosetta: \(error.description)\n".utf8))
        throw ExitCode(1)
    }
}

/// Resolves a client name or exits with the list of known ones.
func clientProfile(named name: String) throws -> any ClientProfile {
    guard let profile = ClientCatalog.named(name) else {
        throw ValidationError("unknown client '\(name)'; known: \(ClientCatalog.names)")
    }
    return profile
}

/// The argv that prints the token: `rosetta token` when `rosetta` on PATH is this program, else this program's path.
func tokenCommand(socket: String?) -> [String] {
    let executable = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.resolvingSymlinksInPath().path
    var program = Bundle.main.executablePath.map { URL(fileURLWithPath: $0).resolvingSymlinksInPath().path } ?? executable
    let pathEntries = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
    for entry in pathEntries {
        let candidate = URL(fileURLWithPath: String(entry)).appendingPathComponent("rosetta").resolvingSymlinksInPath().path
        if FileManager.default.isExecutableFile(atPath: candidate) {
            if candidate == program { program = "rosetta" }
            break
        }
    }
    return [program, "token"] + (socket.map { ["--socket", $0] } ?? [])
}

extension Rosetta {
    /// Prints shell exports that point a client at the gateway.
    struct Env: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print shell exports for a client: eval \"$(rosetta env claude)\".",
            discussion: """
                Clients: \(ClientCatalog.names). The exports carry the current token, so run the eval again \
                (e.g. from your shell's rc file) after `rosetta token --rotate`; clients set up with `rosetta setup` \
                that run `rosetta token` themselves (Claude Code, Codex) need nothing after a rotation.
                """)

        @OptionGroup var socketOptions: SocketOptions

        @Option(name: .long, help: "The model to default to (default: chosen from the gateway's configured models for the client).")
        var model: String?

        @Argument(help: "The client: \(ClientCatalog.names).")
        var client: String

        func run() throws {
            let profile = try clientProfile(named: client)
            let daemon = socketOptions.client
            let facts = try GatewayFacts.fetch(daemon, discover: false)
            let context = try facts.context(for: profile, model: model, tokenCommand: tokenCommand(socket: socketOptions.socket), requireModel: false)
            let answer = try call(daemon, method: "GET", path: "/rosetta/v1/token")
            guard let token = answer["token"]?.stringValue else { throw ValidationError("rosettad's answer has no token") }
            let variables = profile.environment(context: context, token: token, currentEnvironment: ProcessInfo.processInfo.environment)
                .filter { !$0.value.isEmpty }
            print(ShellQuoting.exports(variables), terminator: "")
        }
    }

    /// Writes a client's own config file, merged, with a backup; `--dry-run` shows the diff; `--undo` restores.
    struct Setup: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Point a client's own config file at your gateway (merged, atomic, with a backup).",
            discussion: """
                Clients with a config file: claude (~/.claude/settings.json), codex (~/.codex/config.toml), \
                opencode (~/.config/opencode/opencode.json), aider (~/.aider.conf.yml), gemini (~/.gemini/settings.json), \
                hermes (~/.hermes/config.yaml). Only rosetta's keys change; the first run keeps the previous file as \
                <file>.rosetta-backup (later runs keep that original), and --undo puts it back (or removes a file setup \
                created). A symlinked config file is updated at its target. No token is written into any file.
                """)

        @OptionGroup var socketOptions: SocketOptions

        @Flag(name: .long, help: "Print the change as a unified diff and write nothing.")
        var dryRun = false

        @Flag(name: .long, help: "Restore the file as it was before the first `rosetta setup` of this client.")
        var undo = false

        @Option(name: .long, help: "The model to default to (default: chosen from the gateway's models for the client).")
        var model: String?

        @Argument(help: "The client: claude, codex, opencode, aider, gemini, hermes.")
        var client: String

        func run() throws {
            let profile = try clientProfile(named: client)
            let home = ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()
            guard let path = profile.configPath(home: home) else {
                throw ValidationError("\(profile.displayName) is configured by environment only: eval \"$(rosetta env \(profile.name))\"")
            }
            if undo {
                try runUndo(path: path)
                return
            }
            let facts = try GatewayFacts.fetch(socketOptions.client, discover: true)
            let context = try facts.context(for: profile, model: model, tokenCommand: tokenCommand(socket: socketOptions.socket))
            let before = try orExit { () throws(ClientSetupError) in try ConfigFiles.read(path) }
            let after = try orExit { () throws(ClientSetupError) in try profile.merge(existing: before, context: context) }
            if dryRun {
                let diff = UnifiedDiff.make(before: before ?? "", after: after, fromName: before == nil ? "/dev/null" : path, toName: path)
                print(diff.isEmpty ? "\(path) is already set up; nothing would change." : diff, terminator: diff.isEmpty ? "\n" : "")
                return
            }
            switch try orExit({ () throws(ClientSetupError) in try ConfigFiles.apply(after, to: path) }) {
            case .unchanged:
                print("\(path) is already set up for \(context.endpoint.origin); nothing changed.")
            case .written(let backup):
                print("Wrote \(path): \(profile.displayName) now uses \(context.endpoint.origin) with model \(context.model).")
                print(backup.map { "  previous file kept as \($0); `rosetta setup --undo \(profile.name)` restores it" }
                      ?? "  (new file; `rosetta setup --undo \(profile.name)` removes it)")
            }
            for note in Self.notes(for: profile) { print("  " + note) }
        }

        private func runUndo(path: String) throws {
            switch try orExit({ () throws(ClientSetupError) in try ConfigFiles.undo(path) }) {
            case .restored(let backup): print("Restored \(path) from \(backup).")
            case .removed: print("Removed \(path) (rosetta setup had created it).")
            }
        }

        /// What the user still has to do for clients whose key comes from the environment.
        static func notes(for profile: any ClientProfile) -> [String] {
            switch profile.name {
            case "claude": ["The token comes from `rosetta token` (apiKeyHelper), so rotation needs no re-run."]
            case "codex": ["The token comes from `rosetta token` (model_providers.rosetta.auth), so rotation needs no re-run."]
            default: ["\(profile.displayName) reads the token from the environment: add eval \"$(rosetta env \(profile.name))\" to your shell's rc file."]
            }
        }
    }
}
