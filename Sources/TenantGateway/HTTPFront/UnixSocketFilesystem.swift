#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// File-system steps around a Unix-domain listening socket: a private directory, a stale socket removed, mode 0600.
///
/// None of these steps follow a symlink at the socket path or at its directory.
enum UnixSocketFilesystem {
    private static let fileTypeMask: mode_t = 0o170000
    private static let socketType: mode_t = 0o140000
    private static let groupAndOtherBits: mode_t = 0o077

    /// Makes sure the socket's parent directory exists, belongs to this process's effective user and is 0700.
    ///
    /// Missing directories are created with mode 0700. An existing directory that is group- or
    /// world-accessible is changed to 0700; one owned by another user, one that cannot be
    /// tightened, or a symlink in its place is refused.
    static func preparePrivateDirectory(forSocketAt socketPath: String) throws(HTTPFrontError) {
        guard socketPath.hasPrefix("/") else {
            throw HTTPFrontError(.invalidSocketPath, "the socket path \(socketPath) must be absolute")
        }
        let directory = parentDirectory(of: socketPath)
        try createDirectoryAndParents(directory)

        let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else {
            let code = errno
            throw HTTPFrontError(
                .socketDirectoryUnavailable,
                "cannot open the socket directory \(directory) (it must be a real directory, not a symlink): \(errorText(code))",
                cause: IOError(errnoCode: code, reason: "open")
            )
        }
        defer { close(descriptor) }

        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            let code = errno
            throw HTTPFrontError(.socketDirectoryUnavailable, "cannot inspect the socket directory \(directory): \(errorText(code))")
        }
        let owner = geteuid()
        guard status.st_uid == owner else {
            throw HTTPFrontError(
                .socketDirectoryInsecure,
                "the socket directory \(directory) belongs to uid \(status.st_uid), not to uid \(owner) running the gateway; "
                    + "remove it or fix its owner"
            )
        }
        if status.st_mode & groupAndOtherBits != 0 {
            _ = fchmod(descriptor, 0o700)
            guard fstat(descriptor, &status) == 0, status.st_mode & groupAndOtherBits == 0 else {
                throw HTTPFrontError(
                    .socketDirectoryInsecure,
                    "the socket directory \(directory) is accessible to other users and could not be changed to mode 0700"
                )
            }
        }
    }

    /// Removes a socket left behind at the path by a previous run; refuses anything that is not a socket or that still has a listener.
    static func removeStaleSocket(at socketPath: String) throws(HTTPFrontError) {
        var status = stat()
        guard lstat(socketPath, &status) == 0 else {
            let code = errno
            if code == ENOENT { return }
            throw HTTPFrontError(.invalidSocketPath, "cannot inspect \(socketPath): \(errorText(code))")
        }
        guard status.st_mode & fileTypeMask == socketType else {
            throw HTTPFrontError(
                .socketPathOccupied,
                "\(socketPath) exists and is not a socket (a file, directory or symlink); refusing to replace it"
            )
        }
        if socketHasListener(at: socketPath) {
            throw HTTPFrontError(.addressInUse, "another server is listening on \(socketPath)")
        }
        guard unlink(socketPath) == 0 || errno == ENOENT else {
            let code = errno
            throw HTTPFrontError(.invalidSocketPath, "cannot remove the stale socket \(socketPath): \(errorText(code))")
        }
    }

    /// Sets the socket file's mode to 0600 (the mode a new socket gets depends on the umask).
    static func restrictSocketToOwner(at socketPath: String) throws(HTTPFrontError) {
        guard chmod(socketPath, 0o600) == 0 else {
            let code = errno
            throw HTTPFrontError(.socketPermissions, "cannot set mode 0600 on \(socketPath): \(errorText(code))")
        }
    }

    /// The directory part of an absolute path (`/` for a file at the root).
    static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let parent = String(path[..<slash])
        return parent.isEmpty ? "/" : parent
    }

    private static func createDirectoryAndParents(_ directory: String) throws(HTTPFrontError) {
        var prefix = ""
        for component in directory.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += "/" + component
            if mkdir(prefix, 0o700) != 0 {
                let code = errno
                guard code == EEXIST else {
                    throw HTTPFrontError(
                        .socketDirectoryUnavailable,
                        "cannot create the socket directory \(prefix): \(errorText(code))"
                    )
                }
            }
        }
    }

    /// Whether a process accepts connections on the socket: a refused connect means the socket is stale.
    private static func socketHasListener(at socketPath: String) -> Bool {
        guard let address = try? SocketAddress(unixDomainSocketPath: socketPath) else { return false }
        #if canImport(Glibc)
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #else
        let descriptor = socket(AF_UNIX, SOCK_STREAM, 0)
        #endif
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        let result = address.withSockAddr { pointer, length in
            connect(descriptor, pointer, socklen_t(length))
        }
        if result == 0 { return true }
        let code = errno
        // EAGAIN: the listener's backlog is full, so it is alive.
        return code == EAGAIN || code == EINPROGRESS
    }

    private static func errorText(_ code: Int32) -> String {
        String(cString: strerror(code))
    }
}
