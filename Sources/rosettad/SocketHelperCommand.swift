import ArgumentParser
import Foundation
import Supervisor

extension Rosettad {
    /// The hidden helper system mode runs as a user to create or remove that user's socket (see `TenantSocketHelper`).
    struct SocketHelper: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: TenantSocketHelper.subcommand,
            abstract: "Internal: create or remove a tenant socket as the invoking user; answers on standard output (a socket).",
            shouldDisplay: false)

        @Argument(help: "create or remove.")
        var operation: String

        @Option(name: .long, help: "The socket path.")
        var path: String

        @Option(name: .long, help: "When started as root: the user to become before any work.")
        var uid: UInt32?

        @Option(name: .long, help: "With --uid: the user's primary group.")
        var gid: UInt32?

        @Option(name: .long, help: "With --uid: the user's groups, comma-separated.")
        var groups: String = ""

        func validate() throws {
            guard TenantSocketHelper.Operation(rawValue: operation) != nil else {
                throw ValidationError("the operation must be one of: \(TenantSocketHelper.Operation.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard path.hasPrefix("/") else { throw ValidationError("--path must be absolute") }
            guard (uid == nil) == (gid == nil) else { throw ValidationError("--uid and --gid go together") }
            guard groups.isEmpty || groups.split(separator: ",").allSatisfy({ UInt32($0) != nil }) else {
                throw ValidationError("--groups must be comma-separated group ids")
            }
        }

        func run() throws {
            let action = TenantSocketHelper.Operation(rawValue: operation)!
            let status: Int32
            if let uid, let gid {
                let ids = groups.split(separator: ",").compactMap { UInt32($0) }
                status = TenantSocketHelper.serve(operation: action, path: path, uid: uid, gid: gid, groups: ids)
            } else {
                status = TenantSocketHelper.serve(operation: action, path: path)
            }
            if status != 0 { throw ExitCode(status) }
        }
    }
}
