/// A failure of the HTTP front itself: binding, preparing the socket directory, or writing to a client.
///
/// Callers branch on `code` (for example `addressInUse`, to probe the next port);
/// `message` explains the failure to an operator and `cause` keeps the underlying error.
package struct HTTPFrontError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, stable enough to branch on.
    package enum Code: String, Sendable, Hashable {
        /// The TCP address (or Unix socket path) is already in use by a live listener.
        case addressInUse = "address_in_use"
        /// The socket's directory could not be created or opened.
        case socketDirectoryUnavailable = "socket_directory_unavailable"
        /// The socket's directory is not owned by this process's user or stays group/world-accessible.
        case socketDirectoryInsecure = "socket_directory_insecure"
        /// Something other than a socket (a file, a directory, a symlink) occupies the socket path.
        case socketPathOccupied = "socket_path_occupied"
        /// The socket path is not usable (too long, not absolute, or the stale socket cannot be removed).
        case invalidSocketPath = "invalid_socket_path"
        /// The socket's permissions could not be set.
        case socketPermissions = "socket_permissions"
        /// Binding or adopting the listening socket failed for another reason.
        case bindFailed = "bind_failed"
        /// A connection on the Unix socket came from a user other than the owner and was closed.
        case peerRefused = "peer_refused"
        /// The client went away; nothing more can be written to it.
        case clientDisconnected = "client_disconnected"
        /// The response writer was used out of order (for example two heads, or a chunk before the head).
        case responseOutOfOrder = "response_out_of_order"
        /// A response header name or value contains bytes that cannot be sent (CR, LF or NUL).
        case invalidResponseHeader = "invalid_response_header"
    }

    /// What went wrong.
    package var code: Code
    /// An explanation for an operator; never contains secrets.
    package var message: String
    /// The underlying error, when there is one.
    package var cause: (any Error)?

    /// Creates an error with a code, a message and an optional cause.
    package init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    /// The code and message, plus the cause when present.
    package var description: String {
        var text = "\(code.rawValue): \(message)"
        if let cause { text += " [cause: \(cause)]" }
        return text
    }
}
