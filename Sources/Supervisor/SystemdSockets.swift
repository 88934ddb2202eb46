#if canImport(Glibc)
import Glibc
#endif
import CSystemd
import Logging

/// The name of a listening descriptor systemd passes to the daemon or keeps in its fd store.
///
/// `control` is the control socket (from `rosettad.socket`'s `FileDescriptorName=` or the fd store);
/// `tenant-<uid>` and `tenant-tcp-<uid>` are a tenant's Unix socket and loopback port, pushed to the
/// fd store by the daemon itself.
package enum SystemdSocketName: Hashable, Sendable, CustomStringConvertible {
    /// The control socket.
    case control
    /// A tenant's Unix socket in the user's home.
    case tenantUnix(uid: UInt32)
    /// A tenant's loopback TCP port.
    case tenantTCP(uid: UInt32)
    /// A name the daemon does not use (the descriptor is closed).
    case unknown(String)

    /// Parses a name from `LISTEN_FDNAMES`.
    package init(_ name: String) {
        if name == "control" {
            self = .control
        } else if name.hasPrefix("tenant-tcp-"), let uid = Self.uid(name.dropFirst("tenant-tcp-".count)) {
            self = .tenantTCP(uid: uid)
        } else if name.hasPrefix("tenant-"), let uid = Self.uid(name.dropFirst("tenant-".count)) {
            self = .tenantUnix(uid: uid)
        } else {
            self = .unknown(name)
        }
    }

    /// The name as systemd stores it (`FDNAME=`).
    package var description: String {
        switch self {
        case .control: "control"
        case .tenantUnix(let uid): "tenant-\(uid)"
        case .tenantTCP(let uid): "tenant-tcp-\(uid)"
        case .unknown(let name): name
        }
    }

    private static func uid(_ digits: Substring) -> UInt32? {
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return UInt32(digits)
    }
}

/// A tenant's inherited listening descriptors, either of which may be missing.
package struct InheritedTenantSockets: Equatable, Sendable {
    /// The Unix socket's descriptor (`tenant-<uid>`).
    package var unix: Int32?
    /// The loopback port's descriptor (`tenant-tcp-<uid>`).
    package var tcp: Int32?

    /// Creates the pair; either may be missing.
    package init(unix: Int32? = nil, tcp: Int32? = nil) {
        self.unix = unix
        self.tcp = tcp
    }
}

/// The descriptors systemd passed at start, sorted by what they are for.
package struct InheritedSockets: Equatable, Sendable {
    /// The control socket, if one was passed.
    package var control: Int32?
    /// Each tenant's sockets by uid.
    package var tenants: [UInt32: InheritedTenantSockets] = [:]
    /// Descriptors the daemon has no use for (an unknown name, or a second one with the same name), to be closed.
    package var unused: [(descriptor: Int32, name: String)] = []

    /// No descriptors: a daemon not started by systemd.
    package static let none = InheritedSockets()

    /// Sorts named descriptors; the first one with a given name wins, the others are unused.
    package init(named descriptors: [(descriptor: Int32, name: String)] = []) {
        for (descriptor, name) in descriptors {
            switch SystemdSocketName(name) {
            case .control where control == nil:
                control = descriptor
            case .tenantUnix(let uid) where tenants[uid]?.unix == nil:
                tenants[uid, default: InheritedTenantSockets()].unix = descriptor
            case .tenantTCP(let uid) where tenants[uid]?.tcp == nil:
                tenants[uid, default: InheritedTenantSockets()].tcp = descriptor
            default:
                unused.append((descriptor, name))
            }
        }
    }

    package static func == (left: InheritedSockets, right: InheritedSockets) -> Bool {
        left.control == right.control && left.tenants == right.tenants
            && left.unused.map(\.descriptor) == right.unused.map(\.descriptor)
            && left.unused.map(\.name) == right.unused.map(\.name)
    }
}

/// Socket activation: takes the descriptors systemd passes and checks each is what its name says.
package enum SystemdSocketActivation {
    /// Takes the descriptors passed through `LISTEN_FDS`/`LISTEN_FDNAMES` (for this pid) and removes
    /// `LISTEN_*` from the environment so children never inherit them; unused ones are logged and closed.
    ///
    /// Without `LISTEN_FDS` (not started by systemd) this returns `.none`.
    package static func takeInherited(logger: Logger) -> InheritedSockets {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        let count = sd_listen_fds_with_names(1, &names)
        guard count > 0 else {
            if count < 0 {
                logger.error("cannot read the descriptors systemd passed", metadata: ["error": "\(String(cString: strerror(-count)))"])
            }
            return .none
        }
        defer {
            if let names {
                for index in 0..<Int(count) { free(names[index]) }
                free(names)
            }
        }
        let first = rosetta_sd_listen_fds_start()
        let named = (0..<count).map { index in
            (descriptor: first + index, name: names?[Int(index)].map { String(cString: $0) } ?? "unknown")
        }
        let inherited = InheritedSockets(named: named)
        logger.info("socket activation: descriptors passed by systemd", metadata: [
            "fd.names": "\(named.map(\.name).joined(separator: ","))",
        ])
        for (descriptor, name) in inherited.unused {
            logger.warning("closing a passed descriptor the daemon has no use for", metadata: ["fd.name": "\(name)", "socket.fd": "\(descriptor)"])
            close(descriptor)
        }
        return inherited
    }

    /// Whether `descriptor` is a listening Unix stream socket, bound to `path` when one is given.
    package static func isListeningUnixSocket(_ descriptor: Int32, path: String? = nil) -> Bool {
        sd_is_socket_unix(descriptor, Int32(SOCK_STREAM.rawValue), 1, path, 0) > 0
    }

    /// The port of a listening TCP socket bound to 127.0.0.1, or `nil` when `descriptor` is anything else.
    package static func loopbackPort(ofListening descriptor: Int32) -> Int? {
        guard sd_is_socket_inet(descriptor, AF_INET, Int32(SOCK_STREAM.rawValue), 1, 0) > 0 else { return nil }
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard named == 0, UInt32(bigEndian: address.sin_addr.s_addr) == 0x7F00_0001 else { return nil }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Binds and listens on `127.0.0.1:port` (`SO_REUSEADDR`, close-on-exec) and returns the descriptor, or the errno.
    package static func bindLoopbackTCP(port: Int) -> Result<Int32, SystemdSocketError> {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return .failure(SystemdSocketError(errno, "cannot create a TCP socket")) }
        var on: Int32 = 1
        _ = setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(descriptor, 256) == 0 else {
            let error = SystemdSocketError(errno, "cannot listen on 127.0.0.1:\(port)")
            close(descriptor)
            return .failure(error)
        }
        return .success(descriptor)
    }
}

/// A socket that could not be created or adopted, with the errno behind it.
package struct SystemdSocketError: Error, Sendable, CustomStringConvertible {
    /// A stable code: `address_in_use` or `socket`.
    package var code: String
    /// What failed, with the system's reason.
    package var message: String
    /// The errno.
    package var errnoCode: Int32

    init(_ errnoCode: Int32, _ what: String) {
        self.errnoCode = errnoCode
        self.code = errnoCode == EADDRINUSE ? "address_in_use" : "socket"
        self.message = "\(what): \(String(cString: strerror(errnoCode)))"
    }

    /// The message.
    package var description: String { message }
}
