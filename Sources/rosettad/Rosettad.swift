import ArgumentParser
import Foundation
import Supervisor
import TenantGateway

/// The rosettad daemon.
@main
struct Rosettad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rosettad",
        abstract: "One local LLM endpoint per user that speaks OpenAI Chat and Anthropic Messages and translates between them.",
        subcommands: [Serve.self, SystemStatus.self, SocketHelper.self]
    )
}

extension Rosettad {
    /// Runs the daemon.
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve the gateway.",
            discussion: """
                With --user: one tenant for the invoking user, no root or systemd needed. Without it: system mode \
                (root), one tenant per user who ran `rosetta enable`, PAM-gated (service `rosettad`).
                """)

        @Flag(name: .long, help: "Run one tenant for the invoking user (user mode).")
        var user = false

        @Option(name: .long, help: "YAML config (default: ~/.config/rosetta/config.yaml; written with comments when absent).",
                completion: .file(extensions: ["yaml", "yml"]))
        var config: String?

        @Option(name: .long, help: "The Unix socket to listen on (default: ~/.local/run/rosetta.sock).", completion: .file())
        var socket: String?

        @Option(name: .long, help: "The loopback TCP port (default: derived from the user name; see README).")
        var port: Int?

        @Option(name: .customLong("state-dir"), help: "Directory for the token and the recorded port (default: ~/.local/state/rosetta; system mode: /var/lib/rosettad).",
                completion: .directory)
        var stateDirectory: String?

        @Option(name: .customLong("control-socket"), help: "System mode: the control socket (default: /run/rosettad/control.sock).", completion: .file())
        var controlSocket: String?

        @Option(name: .customLong("pam-service"), help: "System mode: the PAM service asked on enable (default: rosettad).")
        var pamService: String = "rosettad"

        @Option(name: .customLong("pam-dir"), help: "System mode: the PAM configuration directory (default: /etc/pam.d).", completion: .directory)
        var pamDirectory: String = "/etc/pam.d"

        func validate() throws {
            if !user, socket != nil || port != nil {
                throw ValidationError("--socket and --port are user-mode options; system mode derives them per user.")
            }
            if user, controlSocket != nil {
                throw ValidationError("--control-socket is a system-mode option.")
            }
            if let port, !(1...65535).contains(port) {
                throw ValidationError("--port must be between 1 and 65535.")
            }
        }

        func run() async throws {
            let environment = ProcessInfo.processInfo.environment
            RosettaLogging.bootstrap(environment: environment)
            if !user {
                var system = SystemModeOptions()
                if let config { system.configPath = config }
                if let stateDirectory { system.stateDirectory = stateDirectory }
                if let controlSocket { system.controlSocketPath = controlSocket }
                system.pam = PAMAccountCheck(service: pamService, configDirectory: pamDirectory)
                let status = await SystemMode.run(options: system, environment: environment)
                if status != 0 { throw ExitCode(status) }
                return
            }
            let options = UserModeOptions(
                configPath: config, socketPath: socket, port: port, stateDirectory: stateDirectory)
            let status = await UserMode.run(options: options, environment: environment)
            if status != 0 { throw ExitCode(status) }
        }
    }
}

extension Rosettad {
    /// Shows the system daemon's tenants (all of them to root and the admin group, else only the caller's).
    struct SystemStatus: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status",
            abstract: "Show the system daemon and its tenants: user, uid, socket, port, requests, errors, in flight, last used.")

        @Option(name: .customLong("control-socket"), help: "The daemon's control socket (default: /run/rosettad/control.sock).", completion: .file())
        var controlSocket: String = SystemStatusTable.defaultControlSocket

        @Flag(name: .long, help: "Print the report as JSON.")
        var json = false

        func run() throws {
            let report: JSON
            do {
                report = try ControlClient(socketPath: controlSocket).call(method: "GET", path: "/rosetta/v1/tenants")
            } catch {
                FileHandle.standardError.write(Data("rosettad: \(error.message)\n".utf8))
                throw ExitCode(1)
            }
            print(json ? report.text : SystemStatusTable.render(report))
        }
    }
}
