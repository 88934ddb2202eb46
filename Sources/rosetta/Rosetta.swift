import ArgumentParser
import Foundation
import Supervisor
import TenantGateway

/// The user's command-line tool for their rosetta gateway.
@main
struct Rosetta: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rosetta",
        abstract: "Your side of rosettad: your private LLM gateway's token, status, clients, logs, logins and tunnels.",
        subcommands: [Token.self, Status.self, Doctor.self, Models.self, Env.self, Setup.self, Log.self, Login.self, Logout.self, Tunnel.self, Enable.self, Disable.self]
    )
}

/// Options shared by subcommands that talk to the daemon.
struct SocketOptions: ParsableArguments {
    @Option(name: .long, help: "The gateway's Unix socket (default: ~/.local/run/rosetta.sock).", completion: .file())
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

        @Argument(help: "The provider to log in to (its name in the config; `alcf` means the only alcf provider).", completion: .list(["alcf"]))
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

        @Argument(help: "The provider to log out of.", completion: .list(["alcf"]))
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

// MARK: rosetta models

extension Rosetta {
    /// Lists the gateway's models by provider, configured and discovered; `--refresh` discovers again first.
    struct Models: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List your gateway's models by provider (configured and discovered).",
            discussion: """
                Discovered models (Argo's GET /v1/models) are fetched on first need and again when older than the \
                provider's models_refresh; --refresh fetches them now. A failed discovery keeps the last list and \
                shows the error here.
                """)

        @OptionGroup var socketOptions: SocketOptions

        @Flag(name: .long, help: "Discover the models again before listing them.")
        var refresh = false

        @Flag(name: .long, help: "Print the daemon's JSON answer.")
        var json = false

        func run() throws {
            var client = socketOptions.client
            client.timeoutSeconds = 90  // discovery may first bring up a tunnel
            let answer = try call(client, method: refresh ? "POST" : "GET", path: refresh ? "/rosetta/v1/models/refresh" : "/rosetta/v1/models")
            if json {
                print(answer.text)
                return
            }
            for provider in answer["providers"]?.arrayValue ?? [] {
                print(Self.header(provider))
                for model in provider["models"]?.arrayValue ?? [] { print(Self.line(model)) }
            }
        }

        /// `argo: 12 models (discovered 40 s ago; last error: …)`.
        static func header(_ provider: JSON) -> String {
            let name = provider["name"]?.stringValue ?? "?"
            let count = provider["models"]?.arrayValue?.count ?? 0
            var notes: [String] = []
            if let discovery = provider["discovery"] {
                switch discovery["state"]?.stringValue {
                case "ready": notes.append("discovered \(discovery["age_seconds"]?.intValue ?? 0) s ago")
                case let state?: notes.append("discovery \(state.replacingOccurrences(of: "_", with: " "))")
                case nil: break
                }
                if let error = discovery["last_error"]?.stringValue { notes.append("last discovery failed: \(error)") }
            }
            return "\(name): \(count) model\(count == 1 ? "" : "s")" + (notes.isEmpty ? "" : " (\(notes.joined(separator: "; ")))")
        }

        /// `  gpt-4o  → gpt4o  [discovered]  also: openai/gpt-4o, argo:gpt-4o, GPT-4o`.
        static func line(_ model: JSON) -> String {
            let id = model["id"]?.stringValue ?? "?"
            var line = "  " + id.padding(toLength: max(28, id.count + 1), withPad: " ", startingAt: 0)
            if let upstream = model["upstream_model"]?.stringValue { line += "→ " + upstream.padding(toLength: max(20, upstream.count + 1), withPad: " ", startingAt: 0) }
            var source = model["source"]?.stringValue ?? "config"
            if model["overridden_by_config"]?.boolValue == true { source += ", overridden by config" }
            if let status = model["status"]?.stringValue { source += ", \(status)" }
            line += "[\(source)]"
            let others = (model["names"]?.arrayValue ?? []).compactMap(\.stringValue).filter { $0 != id }
            if !others.isEmpty { line += "  also: " + others.joined(separator: ", ") }
            return line
        }
    }
}

// MARK: rosetta tunnel


extension Rosetta {
    /// Manages the SSH tunnel to Argo: status, stop, reset, and an interactive login for MFA.
    struct Tunnel: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Manage your SSH tunnel to Argo (status, stop, reset, login).",
            subcommands: [Status.self, Stop.self, Reset.self, Login.self],
            defaultSubcommand: Status.self)

        /// Options every tunnel subcommand takes.
        struct Options: ParsableArguments {
            @OptionGroup var socketOptions: SocketOptions

            @Option(name: .long, help: "The argo provider whose tunnel to act on (default: all, or the only one).")
            var provider: String?

            func path(_ action: String) -> String {
                "/rosetta/v1/tunnel/\(action)" + (provider.map { "/" + $0 } ?? "")
            }
        }

        /// Prints each tunnel's state, last failure and the advice for it.
        struct Status: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Show the tunnel's state, last failure and what to do.")
            @OptionGroup var options: Options

            func run() throws {
                let answer = try call(options.socketOptions.client, method: "GET", path: options.path("status"))
                print(answer.text)
            }
        }

        /// Stops ssh now; the next Argo request starts it again.
        struct Stop: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Stop the tunnel now; the next Argo request starts it again.")
            @OptionGroup var options: Options

            func run() throws {
                let answer = try call(options.socketOptions.client, method: "POST", path: options.path("stop"))
                print(answer.text)
            }
        }

        /// Clears failures, cool-down and lock.
        struct Reset: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Forget failures and leave cool-down or lock; the next Argo request tries again.")
            @OptionGroup var options: Options

            func run() throws {
                let answer = try call(options.socketOptions.client, method: "POST", path: options.path("reset"))
                print(answer.text)
            }
        }

        /// Runs ssh in this terminal to open a ControlMaster the tunnel then reuses (passwords and OTPs stay here).
        struct Login: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Log in interactively (password, MFA) and leave an ssh ControlMaster the tunnel reuses.",
                discussion: "rosettad never sees what you type: ssh runs here, in your terminal. A stale control socket is removed first.")
            @OptionGroup var options: Options

            func run() throws {
                let client = options.socketOptions.client
                let plan = try call(client, method: "POST", path: options.path("login"))
                guard let executable = plan["executable"]?.stringValue, case .array(let items)? = plan["arguments"] else {
                    throw ValidationError("rosettad's answer has no ssh command")
                }
                if plan["already_running"] == .bool(true) {
                    print("An ssh ControlMaster is already running at \(plan["control_path"]?.stringValue ?? "?"); nothing to do.")
                } else {
                    let arguments = items.compactMap(\.stringValue)
                    let status = InteractiveChild.run(executable: executable, arguments: arguments)
                    guard status == 0 else {
                        FileHandle.standardError.write(Data("rosetta: ssh exited with status \(status); no ControlMaster was opened\n".utf8))
                        throw ExitCode(status == 0 ? 1 : status)
                    }
                    print("Logged in: the ssh ControlMaster at \(plan["control_path"]?.stringValue ?? "?") stays open; rosetta's tunnel uses it.")
                }
                // Leave any failure state and stop a standalone ssh, so the next request uses the master.
                _ = try call(client, method: "POST", path: options.path("reset"))
            }
        }
    }
}

/// Runs a program attached to this terminal and waits for it.
enum InteractiveChild {
    /// Spawns `executable` with this process's stdin, stdout and stderr, default signal handling, and waits.
    static func run(executable: String, arguments: [String]) -> Int32 {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGPIPE] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, nil, &attributes, argv, environ)
        guard spawned == 0 else {
            FileHandle.standardError.write(Data("rosetta: cannot run \(executable): \(String(cString: strerror(spawned)))\n".utf8))
            return 127
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return 1 }
        }
        if status & 0x7f == 0 { return (status >> 8) & 0xff }
        return 128 + (status & 0x7f)
    }
}

/// Options for subcommands that talk to the system daemon's control socket.
struct ControlSocketOptions: ParsableArguments {
    @Option(name: .customLong("control-socket"), help: "The system daemon's control socket (default: /run/rosettad/control.sock).", completion: .file())
    var controlSocket: String = SystemStatusTable.defaultControlSocket

    var client: ControlClient {
        var client = ControlClient(socketPath: controlSocket)
        client.startHint = "the host's rosettad is not started; an admin starts it with `systemctl start rosettad`"
        return client
    }
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
