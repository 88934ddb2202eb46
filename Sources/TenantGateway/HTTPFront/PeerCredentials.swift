#if canImport(Glibc)
import Glibc
#endif
import NIOCore

/// The credentials of the process at the other end of a Unix-domain socket, as `SO_PEERCRED` reports them.
///
/// The layout matches Linux's `struct ucred` (pid, uid, gid), which Swift cannot see from Glibc.
package struct PeerCredentials: Sendable, Equatable {
    /// The peer's process id at connect time.
    package var pid: Int32
    /// The peer's effective user id at connect time.
    package var uid: UInt32
    /// The peer's effective group id at connect time.
    package var gid: UInt32

    /// Creates credentials from their three fields.
    package init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    #if os(Linux)
    /// Reads `SO_PEERCRED` from a connected Unix-domain socket channel.
    static func read(from channel: any Channel) -> EventLoopFuture<PeerCredentials> {
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(
                HTTPFrontError(.bindFailed, "the accepted channel cannot report socket options")
            )
        }
        return provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET),
            name: SocketOptionName(SO_PEERCRED)
        )
    }
    #endif
}
