#if canImport(Glibc)
import Glibc
#endif

/// The account a tenant runs for: name, ids and home, from the password database.
package struct UserIdentity: Sendable, Equatable {
    /// The login name.
    package var name: String
    /// The numeric user id.
    package var uid: UInt32
    /// The primary group id.
    package var gid: UInt32
    /// The home directory.
    package var home: String

    /// The identity of the effective user of this process; `HOME` overrides the home directory when set.
    package static func current(environment: [String: String]) -> UserIdentity {
        let uid = geteuid()
        var name = environment["USER"] ?? "uid\(uid)"
        var home = "/"
        var gid = getegid()
        if let entry = getpwuid(uid) {
            name = String(cString: entry.pointee.pw_name)
            home = String(cString: entry.pointee.pw_dir)
            gid = entry.pointee.pw_gid
        }
        if let override = environment["HOME"], !override.isEmpty { home = override }
        return UserIdentity(name: name, uid: uid, gid: gid, home: home)
    }

    /// The default path of the user's gateway socket.
    package var defaultSocketPath: String { home + "/.local/run/rosetta.sock" }
    /// The default user-mode configuration file.
    package var defaultConfigPath: String { home + "/.config/rosetta/config.yaml" }
    /// The default user-mode state directory.
    package var defaultStateDirectory: String { home + "/.local/state/rosetta" }
}
