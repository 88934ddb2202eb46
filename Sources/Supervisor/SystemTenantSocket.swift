#if canImport(Glibc)
import Glibc
#endif
import CPAM

/// A failure creating or removing a tenant's socket in the user's home, with the user-facing message.
package struct TenantSocketError: Error, Sendable, CustomStringConvertible {
    /// A stable code: `credentials`, `directory`, `occupied`, `socket`.
    package var code: String
    /// What went wrong, with the path and the system's reason.
    package var message: String
    /// The errno behind it, when there is one.
    package var errnoCode: Int32?

    /// The message.
    package var description: String { message }
}

/// Creates and removes tenants' Unix sockets under their homes with the user's filesystem identity.
///
/// Root never walks a user-writable path with its own rights: the calling thread switches its
/// filesystem uid, gid and supplementary groups to the user's (`setfsuid`, `setfsgid`, and the raw
/// per-thread `setgroups` system call) for the duration of the synchronous work and restores them
/// before returning. Every permission check, symlink and the new socket's owner are therefore the
/// user's, and an NFS home that squashes root sees the user's credentials (AUTH_SYS uses the
/// filesystem ids). This stands in for the short-lived helper process of the design (which would pass
/// the descriptor back over SCM_RIGHTS); the daemon adopts the listening descriptor either way.
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

    /// Runs `body` on this thread with the user's filesystem credentials, restoring the daemon's afterwards.
    static func asUser<T>(_ user: UserIdentity, _ body: () throws(TenantSocketError) -> T) throws(TenantSocketError) -> T {
        let previousCount = getgroups(0, nil)
        var previous = [gid_t](repeating: 0, count: Int(max(previousCount, 0)))
        if previousCount > 0 { _ = getgroups(previousCount, &previous) }
        let userGroups = groups(of: user)
        guard userGroups.withUnsafeBufferPointer({ rosetta_thread_setgroups(Int32($0.count), $0.baseAddress) }) == 0 else {
            throw TenantSocketError(code: "credentials", message: "cannot take on the groups of \(user.name): \(String(cString: strerror(errno)))", errnoCode: errno)
        }
        _ = rosetta_thread_setfsgid(user.gid)
        _ = rosetta_thread_setfsuid(user.uid)
        defer {
            _ = rosetta_thread_setfsuid(geteuid())
            _ = rosetta_thread_setfsgid(getegid())
            _ = previous.withUnsafeBufferPointer { rosetta_thread_setgroups(Int32($0.count), $0.baseAddress) }
        }
        // setfsuid reports no errors: asking with an invalid id returns the current one without changing it.
        guard UInt32(bitPattern: rosetta_thread_setfsuid(UInt32.max)) == user.uid,
              UInt32(bitPattern: rosetta_thread_setfsgid(UInt32.max)) == user.gid else {
            throw TenantSocketError(code: "credentials", message: "cannot take on the filesystem identity of \(user.name)", errnoCode: nil)
        }
        return try body()
    }

    /// Creates the user's socket directory (0700, owned by the user) and a listening socket (0600) at `path`.
    ///
    /// A stale socket at the path is replaced; anything else there is refused. Returns the listening descriptor.
    package static func makeListeningSocket(at path: String, for user: UserIdentity) throws(TenantSocketError) -> Int32 {
        try asUser(user) { () throws(TenantSocketError) -> Int32 in
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
            guard status.st_uid == user.uid else {
                throw TenantSocketError(code: "directory", message: "\(directory) belongs to uid \(status.st_uid), not to \(user.name)", errnoCode: nil)
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
    }

    /// Removes the user's socket file, if it is a socket, with the user's filesystem identity.
    package static func removeSocket(at path: String, for user: UserIdentity) {
        _ = try? asUser(user) { () throws(TenantSocketError) in
            var status = stat()
            if lstat(path, &status) == 0, status.st_mode & 0o170000 == 0o140000 { unlink(path) }
        }
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

    private static func failure(_ code: String, _ what: String) -> TenantSocketError {
        let number = errno
        return TenantSocketError(code: code, message: "\(what): \(String(cString: strerror(number)))", errnoCode: number)
    }
}
