import ArgumentParser
import Foundation
import Supervisor
import TenantGateway

/// The user's command-line tool for their rosetta gateway.
@main
struct Rosetta: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rosetta",
        abstract: "Your side of rosettad: tokens and status of your private LLM gateway.",
        subcommands: [Token.self, Status.self, Login.self, Logout.self, Enable.self, Disable.self]
    )
}

/// Options shared by subcommands that talk to the daemon.
struct SocketOptions: ParsableArguments {
    @Option(name: .long, help: "The gateway's Unix socket (default: ~/.local/run/rosetta.sock).")
    var socket: String?

    var client: ControlClient {
        ControlClient(socketPath: socket ?? UserIdentity.current(environment: ProcessInfo.processInfo.environment).defaultSocketPath)
    }
}

extension Rosetta {
    /// Prints (or rotates) the token that guards the user's loopback port.
    struct Token: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print your gateway token (for Authorization: Bearer or x-api-key on the loopback port).",
            discussion: "Suitable as Claude Code's apiKeyHelper. --rotate replaces the token; the old one stops working at once.")

        @OptionGroup var socketOptions: SocketOptions

        @Flag(name: .long, help: "Replace the token with a new one and print it.")
        var rotate = false

        func run() throws {
            let answer = try call(socketOptions.client, method: rotate ? "POST" : "GET", path: rotate ? "/rosetta/v1/token/rotate" : "/rosetta/v1/token")
            guard let token = answer["token"]?.stringValue else {
                throw ValidationError("rosettad's answer has no token")
            }
            print(token)
        }
    }

    /// Shows the gateway's status.
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show your gateway's status: where it listens and which models it serves.")

        @OptionGroup var socketOptions: SocketOptions

        func run() throws {
            let answer = try call(socketOptions.client, method: "GET", path: "/rosetta/v1/status")
            print(answer.text)
        }
    }
}

extension Rosetta {
    /// Logs the gateway in to a Globus-protected provider (ALCF) with the paste-the-code flow.
    struct Login: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Log your gateway in to ALCF (Globus): open the printed URL, then paste the code Globus shows.",
            discussion: """
                Works over SSH: the browser can be on any machine. The daemon keeps the PKCE verifier and the grant \
                (in its state directory, mode 0600) and refreshes the token itself; log in again only when told to \
                (ALCF asks every 30 days). The code can also be piped on stdin.
                """)

        @OptionGroup var socketOptions: SocketOptions

        @Argument(help: "The provider to log in to (its name in the config; `alcf` means the only alcf provider).")
        var provider: String = "alcf"

        func run() throws {
            var client = socketOptions.client
            let started = try call(client, method: "POST", path: "/rosetta/v1/login/\(provider)/start")
            guard let url = started["authorize_url"]?.stringValue else { throw ValidationError("rosettad's answer has no authorize_url") }
            FileHandle.standardError.write(Data("Open this URL in a browser, log in, and paste the authorization code shown at the end:\n\n".utf8))
            FileHandle.standardOutput.write(Data((url + "\n").utf8))  // unbuffered: a script reads it before answering
            FileHandle.standardError.write(Data("\nCode: ".utf8))
            guard let line = readLine(strippingNewline: true), !line.trimmingCharacters(in: .whitespaces).isEmpty else {
                FileHandle.standardError.write(Data("\nrosetta: no code given; nothing changed\n".utf8))
                throw ExitCode(1)
            }
            client.timeoutSeconds = 90
            let finished = try call(client, method: "POST", path: "/rosetta/v1/login/\(provider)/finish",
                                    body: ["code": .string(line.trimmingCharacters(in: .whitespaces))])
            let expiry = finished["expires_at"]?.stringValue ?? "unknown"
            let refreshable = finished["refreshable"]?.boolValue == true
            print("Logged in to \(finished["provider"]?.stringValue ?? provider). The access token expires at \(expiry); "
                  + (refreshable ? "rosettad refreshes it automatically." : "no refresh token was issued, so log in again then."))
        }
    }

    /// Revokes and forgets the gateway's Globus grant.
    struct Logout: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Log your gateway out of ALCF: revoke the Globus tokens and delete them.")

        @OptionGroup var socketOptions: SocketOptions

        @Argument(help: "The provider to log out of.")
        var provider: String = "alcf"

        func run() throws {
            let answer = try call(socketOptions.client, method: "POST", path: "/rosetta/v1/logout/\(provider)")
            let name = answer["provider"]?.stringValue ?? provider
            if answer["logged_out"]?.boolValue == true {
                print(answer["revoked"]?.boolValue == true
                      ? "Logged out of \(name); the tokens were revoked and deleted."
                      : "Logged out of \(name); the tokens were deleted, but Globus did not confirm their revocation.")
            } else {
                print("Not logged in to \(name); nothing to do.")
            }
        }
    }
}

/// Calls the daemon, turning a failure into a clean exit with the daemon's message.
func call(_ client: ControlClient, method: String, path: String, body: JSON? = nil) throws -> JSON {
    do {
        return try client.call(method: method, path: path, body: body)
    } catch {
        FileHandle.standardError.write(Data("rosetta: \(error.message)\n".utf8))
        throw ExitCode(1)
    }
}

/// Options for subcommands that talk to the system daemon's control socket.
struct ControlSocketOptions: ParsableArguments {
    @Option(name: .customLong("control-socket"), help: "The system daemon's control socket (default: /run/rosettad/control.sock).")
    var controlSocket: String = SystemStatusTable.defaultControlSocket

    var client: ControlClient { ControlClient(socketPath: controlSocket) }
}

extension Rosetta {
    /// Asks the system daemon to serve the caller (PAM decides whether the account may).
    struct Enable: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Enable your gateway on this host's rosettad (the admin's PAM policy decides who may).")

        @OptionGroup var controlOptions: ControlSocketOptions

        func run() throws {
            var client = controlOptions.client
            client.timeoutSeconds = 30
            let answer = try call(client, method: "POST", path: "/rosetta/v1/enable")
            let socket = answer["socket"]?.stringValue ?? "?"
            let port = answer["port"]?.intValue.map(String.init) ?? "?"
            print("Enabled for \(answer["user"]?.stringValue ?? "you").")
            print("  unix socket  \(socket)  (no token needed)")
            print("  loopback     http://127.0.0.1:\(port)  (token: `rosetta token`)")
        }
    }

    /// Asks the system daemon to stop serving the caller.
    struct Disable: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable your gateway on this host's rosettad: its socket and port close.")

        @OptionGroup var controlOptions: ControlSocketOptions

        func run() throws {
            var client = controlOptions.client
            client.timeoutSeconds = 60
            let answer = try call(client, method: "POST", path: "/rosetta/v1/disable")
            print("Disabled for \(answer["user"]?.stringValue ?? "you").")
        }
    }
}
