#if canImport(Glibc)
import Glibc
#endif

/// A failure creating or removing a tenant's socket in the user's home, with the user-facing message.
package struct TenantSocketError: Error, Sendable, CustomStringConvertible {
    /// A stable code: `directory`, `occupied`, `socket`, `helper`.
    package var code: String
    /// What went wrong, with the path and the system's reason.
    package var message: String
    /// The errno behind it, when there is one.
    package var errnoCode: Int32?

    /// The message.
    package var description: String { message }
}

/// Creates and removes tenants' Unix sockets under their homes, always as the user and never as root.
///
/// Root never walks a user-writable path with its own rights: the work is done by a short-lived helper
/// process (`rosettad socket-helper`, see `TenantSocketHelper`) running with the user's uid, gid and
/// supplementary groups, which hands the listening descriptor back over a socket pair (`SCM_RIGHTS`).
/// Every permission check, symlink and the new socket's owner are therefore the user's, and an NFS
/// home that squashes root works, because root never touches it.
package enum TenantSocketFilesystem {
    /// The supplementary groups of a user, from the group database.
    package static func groups(of user: UserIdentity) -> [gid_t] {
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(user.name, user.gid, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(user.name, user.gid, &groups, &count)
        }
        return Array(groups.prefix(Int(max(count, 0))))
    }

    /// Creates the user's socket directory (0700, owned by the user) and a listening socket (0600) at `path`,
    /// through the helper running as the user; returns the listening descriptor, now the daemon's.
    ///
    /// A stale socket at the path is replaced; anything else there is refused.
    package static func makeListeningSocket(at path: String, for user: UserIdentity) async throws(TenantSocketError) -> Int32 {
        let outcome = try await TenantSocketHelper.run(.create, path: path, as: user)
        guard let descriptor = outcome else {
            throw TenantSocketError(code: "helper", message: "the socket helper reported success but passed no descriptor", errnoCode: nil)
        }
        return descriptor
    }

    /// Removes the user's socket file, if it is a socket, through the helper running as the user.
    ///
    /// Best effort: a failure leaves a stale socket file, which the next enable replaces.
    package static func removeSocket(at path: String, for user: UserIdentity) async {
        _ = try? await TenantSocketHelper.run(.remove, path: path, as: user)
    }

    /// The helper's work for `create`, done by the calling process with its own credentials: the 0700 directory
    /// (checked to belong to `expectedOwner`) and the 0600 listening socket; returns the descriptor.
    package static func createListeningSocketAsCurrentUser(at path: String, expectedOwner: uid_t) throws(TenantSocketError) -> Int32 {
        let directory = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        var prefix = ""
        for component in directory.split(separator: "/") {
            prefix += "/" + component
            if mkdir(prefix, 0o700) != 0 && errno != EEXIST {
                throw failure("directory", "cannot create \(prefix)")
            }
        }
        let directoryDescriptor = open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard directoryDescriptor >= 0 else { throw failure("directory", "cannot open \(directory) (it must be a real directory)") }
        defer { close(directoryDescriptor) }
        var status = stat()
        guard fstat(directoryDescriptor, &status) == 0 else { throw failure("directory", "cannot inspect \(directory)") }
        guard status.st_uid == expectedOwner else {
            throw TenantSocketError(code: "directory", message: "\(directory) belongs to uid \(status.st_uid), not to uid \(expectedOwner)", errnoCode: nil)
        }
        if status.st_mode & 0o077 != 0 && fchmod(directoryDescriptor, 0o700) != 0 {
            throw failure("directory", "cannot make \(directory) private (mode 0700)")
        }
        var existing = stat()
        if lstat(path, &existing) == 0 {
            guard existing.st_mode & 0o170000 == 0o140000 else {
                throw TenantSocketError(code: "occupied", message: "\(path) exists and is not a socket; refusing to replace it", errnoCode: nil)
            }
            guard !hasListener(at: path) else {
                throw TenantSocketError(
                    code: "occupied",
                    message: "another server listens on \(path) (a user-mode `rosettad serve --user`?); stop it, then enable again",
                    errnoCode: nil)
            }
            guard unlink(path) == 0 else { throw failure("socket", "cannot remove the stale socket \(path)") }
        }
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw failure("socket", "cannot create a socket") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(descriptor)
            throw TenantSocketError(code: "socket", message: "the socket path \(path) is too long", errnoCode: nil)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: bytes)
            buffer[bytes.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else {
            let error = failure("socket", "cannot bind \(path)")
            close(descriptor)
            throw error
        }
        guard chmod(path, 0o600) == 0, listen(descriptor, 256) == 0 else {
            let error = failure("socket", "cannot make \(path) a private listening socket")
            close(descriptor)
            unlink(path)
            throw error
        }
        return descriptor
    }

    /// The helper's work for `remove`: unlinks `path` when it is a socket, with the calling process's credentials.
    package static func removeSocketAsCurrentUser(at path: String) throws(TenantSocketError) {
        var status = stat()
        guard lstat(path, &status) == 0 else {
            if errno == ENOENT { return }
            throw failure("socket", "cannot inspect \(path)")
        }
        guard status.st_mode & 0o170000 == 0o140000 else { return }
        guard unlink(path) == 0 else { throw failure("socket", "cannot remove \(path)") }
    }

    /// Whether a process accepts connections on a Unix socket path (a refused connect means it is stale).
    static func hasListener(at path: String) -> Bool {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: bytes)
            buffer[bytes.count] = 0
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        return result == 0 || errno == EAGAIN || errno == EINPROGRESS
    }

    static func failure(_ code: String, _ what: String) -> TenantSocketError {
        let number = errno
        return TenantSocketError(code: code, message: "\(what): \(String(cString: strerror(number)))", errnoCode: number)
    }
}
