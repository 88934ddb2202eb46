import ArgumentParser
import Foundation
import Supervisor

/// The rosettad daemon.
@main
struct Rosettad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rosettad",
        abstract: "One local LLM endpoint per user that speaks OpenAI Chat and Anthropic Messages and translates between them.",
        subcommands: [Serve.self]
    )
}

extension Rosettad {
    /// Runs the daemon.
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve the gateway.",
            discussion: "With --user: one tenant for the invoking user, no root or systemd needed.")

        @Flag(name: .long, help: "Run one tenant for the invoking user (user mode).")
        var user = false

        @Option(name: .long, help: "YAML config (default: ~/.config/rosetta/config.yaml; written with comments when absent).")
        var config: String?

        @Option(name: .long, help: "The Unix socket to listen on (default: ~/.local/run/rosetta.sock).")
        var socket: String?

        @Option(name: .long, help: "The loopback TCP port (default: derived from the user name; see README).")
        var port: Int?

        @Option(name: .customLong("state-dir"), help: "Directory for the token and the recorded port (default: ~/.local/state/rosetta).")
        var stateDirectory: String?

        func validate() throws {
            guard user else {
                throw ValidationError("Only user mode is available in this build: run `rosettad serve --user`.")
            }
            if let port, !(1...65535).contains(port) {
                throw ValidationError("--port must be between 1 and 65535.")
            }
        }

        func run() async throws {
            let environment = ProcessInfo.processInfo.environment
            RosettaLogging.bootstrap(environment: environment)
            let options = UserModeOptions(
                configPath: config, socketPath: socket, port: port, stateDirectory: stateDirectory)
            let status = await UserMode.run(options: options, environment: environment)
            if status != 0 { throw ExitCode(status) }
        }
    }
}
