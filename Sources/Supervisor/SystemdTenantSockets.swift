#if canImport(Glibc)
import Glibc
#endif
import Logging
import TenantGateway

/// Opening tenants' listening sockets: adopted from systemd when it passed them, created otherwise,
/// and in either case pushed to systemd's fd store so a restart refuses no connection.
extension SystemDaemon {
    /// Opens the tenant's Unix socket and loopback port and pushes both to the fd store.
    ///
    /// A socket systemd passed (`tenant-<uid>`, `tenant-tcp-<uid>`) is adopted when it still is what
    /// its name says: a listening Unix socket bound to `socketPath` with the file still there, and a
    /// listening socket on 127.0.0.1 (whose port is then recorded). Otherwise it is closed, dropped
    /// from the store, and a fresh one is made: the Unix socket by the user-identity helper, the port
    /// by the derived-port probe.
    func openTenantListeners(
        identity: UserIdentity, socketPath: String, directory: String, logger: Logger
    ) async throws -> (unix: HTTPFrontListener, tcp: HTTPFrontListener) {
        let inherited = inheritedSockets.removeValue(forKey: identity.uid) ?? InheritedTenantSockets()
        let unixName = SystemdSocketName.tenantUnix(uid: identity.uid).description
        let tcpName = SystemdSocketName.tenantTCP(uid: identity.uid).description

        let unixDescriptor: Int32
        if let descriptor = inherited.unix, SystemdSocketActivation.isListeningUnixSocket(descriptor, path: socketPath),
           !Self.socketFileIsGone(at: socketPath) {
            unixDescriptor = descriptor
            logger.info("adopted the tenant's Unix socket from systemd", metadata: ["socket.path": "\(socketPath)"])
        } else {
            if let descriptor = inherited.unix {
                logger.notice("the Unix socket systemd passed is no longer usable; making a new one", metadata: ["socket.path": "\(socketPath)"])
                close(descriptor)
                notifier.removeStored(name: unixName)
            }
            do {
                unixDescriptor = try await TenantSocketFilesystem.makeListeningSocket(at: socketPath, for: identity)
            } catch {
                if let descriptor = inherited.tcp { close(descriptor) }
                throw error
            }
        }

        let tcpDescriptor: Int32
        let port: Int
        if let descriptor = inherited.tcp, let inheritedPort = SystemdSocketActivation.loopbackPort(ofListening: descriptor) {
            (tcpDescriptor, port) = (descriptor, inheritedPort)
            recordPort(inheritedPort, directory: directory)
            logger.info("adopted the tenant's loopback port from systemd", metadata: ["tcp.port": "\(inheritedPort)"])
        } else {
            if let descriptor = inherited.tcp {
                logger.notice("the TCP socket systemd passed is no longer usable; binding a new one")
                close(descriptor)
                notifier.removeStored(name: tcpName)
            }
            do {
                (tcpDescriptor, port) = try bindDerivedPort(identity: identity, directory: directory)
            } catch {
                close(unixDescriptor)
                await TenantSocketFilesystem.removeSocket(at: socketPath, for: identity)
                throw error
            }
        }

        // Pushed before the listeners take the descriptors over; systemd ignores a descriptor it already holds.
        notifier.store([unixDescriptor], name: unixName)
        notifier.store([tcpDescriptor], name: tcpName)
        let unix: HTTPFrontListener
        do {
            unix = try await HTTPFrontListener.adoptListeningSocket(
                unixDescriptor, front: .unixSocket(ownerUID: identity.uid), limits: config.limits, logger: logger)
        } catch {
            close(unixDescriptor)
            close(tcpDescriptor)
            forgetStoredSockets(uid: identity.uid)
            throw error
        }
        do {
            let tcp = try await HTTPFrontListener.adoptListeningSocket(
                tcpDescriptor, front: .loopbackTCP, limits: config.limits, logger: logger)
            logger.info("listening", metadata: ["front": "tcp", "tcp.port": "\(port)"])
            return (unix, tcp)
        } catch {
            await unix.close()
            close(tcpDescriptor)
            forgetStoredSockets(uid: identity.uid)
            throw error
        }
    }

    /// Drops a tenant's sockets from the fd store and closes any still-unadopted inherited ones.
    func forgetStoredSockets(uid: UInt32) {
        if let inherited = inheritedSockets.removeValue(forKey: uid) {
            if let descriptor = inherited.unix { close(descriptor) }
            if let descriptor = inherited.tcp { close(descriptor) }
        }
        notifier.removeStored(name: SystemdSocketName.tenantUnix(uid: uid).description)
        notifier.removeStored(name: SystemdSocketName.tenantTCP(uid: uid).description)
    }

    /// After the restore: sockets passed for tenants that are no longer enabled are closed and dropped from the store.
    func closeUnclaimedInheritedSockets() {
        for uid in inheritedSockets.keys.sorted() {
            logger.notice("closing sockets systemd passed for a tenant that is not enabled", metadata: ["tenant.uid": "\(uid)"])
            forgetStoredSockets(uid: uid)
        }
    }

    /// Binds the first free port of the user's derived candidates (the recorded one first) and records it.
    private func bindDerivedPort(identity: UserIdentity, directory: String) throws -> (descriptor: Int32, port: Int) {
        let portFile = directory + "/port"
        let recorded = (try? SecretFile.read(portFile)).flatMap { $0 }.flatMap { Int(String(decoding: $0, as: UTF8.self).filter(\.isNumber)) }
        let candidates = DerivedPort.candidates(forUser: identity.name, recorded: recorded)
        for port in candidates {
            switch SystemdSocketActivation.bindLoopbackTCP(port: port) {
            case .success(let descriptor):
                if port != recorded { recordPort(port, directory: directory) }
                return (descriptor, port)
            case .failure(let error) where error.errnoCode == EADDRINUSE:
                continue
            case .failure(let error):
                throw UserModeError(message: error.message, exitStatus: 71)
            }
        }
        throw UserModeError(message: "every port probed for \(identity.name) is taken (\(candidates.map(String.init).joined(separator: ", ")))", exitStatus: 71)
    }

    private func recordPort(_ port: Int, directory: String) {
        let portFile = directory + "/port"
        let recorded = (try? SecretFile.read(portFile)).flatMap { $0 }.flatMap { Int(String(decoding: $0, as: UTF8.self).filter(\.isNumber)) }
        guard recorded != port else { return }
        do {
            try SecretFile.write(Array("\(port)\n".utf8), to: portFile)
        } catch {
            logger.warning("cannot record the tenant's port", metadata: ["path": "\(portFile)", "error": "\(error)"])
        }
    }

    /// Whether the socket file at `path` was removed or replaced by something else (a read-only `lstat`).
    ///
    /// When root may not look (a root-squashed NFS home), the socket is trusted: systemd's check of
    /// its bound path already passed, and a wrong guess only affects this user's tenant.
    private static func socketFileIsGone(at path: String) -> Bool {
        var status = stat()
        if lstat(path, &status) != 0 { return errno == ENOENT || errno == ENOTDIR }
        return status.st_mode & 0o170000 != 0o140000
    }
}
