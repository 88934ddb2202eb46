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
        subcommands: [Token.self, Status.self]
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

/// Calls the daemon, turning a failure into a clean exit with the daemon's message.
func call(_ client: ControlClient, method: String, path: String) throws -> JSON {
    do {
        return try client.call(method: method, path: path)
    } catch {
        FileHandle.standardError.write(Data("rosetta: \(error.message)\n".utf8))
        throw ExitCode(1)
    }
}
