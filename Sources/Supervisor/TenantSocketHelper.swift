#if canImport(Glibc)
import Glibc
#endif
import CSystemd  // owns <sys/socket.h> declarations (SOCK_SEQPACKET, SOCK_CLOEXEC) once libsystemd's headers are in the module graph
import Subprocess
import TenantGateway
#if canImport(System)
import System
#else
import SystemPackage
#endif

/// The short-lived process that creates or removes a tenant's socket as the user, and its protocol.
///
/// The daemon (root) makes a `SOCK_SEQPACKET` socket pair and spawns its own executable as
/// `rosettad socket-helper <create|remove> --path P --uid U --gid G --groups …` with swift-subprocess, with
/// one end of the pair as the helper's standard output. The helper first drops to the user's uid, gid and
/// supplementary groups for good, then does the filesystem work with only the user's rights, then sends exactly one message on that end: a JSON
/// object (`{"ok": true}` or `{"ok": false, "code": …, "message": …, "errno": …}`) and, for a created
/// socket, the listening descriptor as `SCM_RIGHTS`. Then it exits.
package enum TenantSocketHelper {
    /// What the helper is asked to do.
    package enum Operation: String, Sendable, CaseIterable {
        /// Create the 0700 directory and the 0600 listening socket; pass the descriptor back.
        case create
        /// Remove the socket file when it is a socket.
        case remove
    }

    /// The hidden subcommand of `rosettad` that runs the helper.
    package static let subcommand = "socket-helper"
    /// How long the helper may take before it is killed (an NFS home may hang).
    static let timeout: Duration = .seconds(20)
    /// The largest message accepted.
    static let maximumMessageBytes = 8192

    // MARK: Daemon side

    /// Runs the helper as `user` and returns the descriptor it passed back (`nil` for `remove`).
    package static func run(_ operation: Operation, path: String, as user: UserIdentity) async throws(TenantSocketError) -> Int32? {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw TenantSocketFilesystem.failure("helper", "cannot create the socket pair for the socket helper")
        }
        let daemonEnd = pair[0]
        let helperEnd = pair[1]
        defer { close(daemonEnd) }
        let executable = try executablePath()
        let groups = TenantSocketFilesystem.groups(of: user)
        let finished: (status: TerminationStatus, stderr: String)
        do {
            finished = try await withThrowingTaskGroup(of: (status: TerminationStatus, stderr: String)?.self) { group in
                group.addTask {
                    // The helper drops to the user itself (`setgroups`, `setgid`, `setuid` before any work; as root these set the real, effective and saved ids): asking
                    // swift-subprocess to do it runs glibc's `setgroups` in a forked child of this multi-threaded
                    // process, which can deadlock in `__nptl_setxid` (seen here); a plain spawn cannot.
                    let environment = Environment.custom([
                        "HOME": user.home, "USER": user.name, "LOGNAME": user.name, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
                    ])
                    let arguments = Arguments([
                        subcommand, operation.rawValue, "--path", path, "--uid", String(user.uid), "--gid", String(user.gid),
                        "--groups", groups.map(String.init).joined(separator: ","),
                    ])
                    let result = try await Subprocess.run(
                        .path(FilePath(executable)), arguments: arguments, environment: environment,
                        input: .none, output: .fileDescriptor(FileDescriptor(rawValue: helperEnd), closeAfterSpawningProcess: true),
                        error: .string(limit: 4096))
                    return (result.terminationStatus, result.standardError)
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let outcome = first else {
                    throw TenantSocketError(code: "helper", message: "the socket helper for \(user.name) did not finish within \(timeout.components.seconds) s (a hung home directory?)", errnoCode: nil)
                }
                return outcome
            }
        } catch let error as TenantSocketError {
            throw error
        } catch {
            throw TenantSocketError(code: "helper", message: "cannot run the socket helper \(executable) as \(user.name): \(error)", errnoCode: nil)
        }
        let message: HelperMessage
        do {
            message = try receive(on: daemonEnd)
        } catch {
            let detail = finished.stderr.trimmingCharacters(in: " \n\r\t")
            throw TenantSocketError(
                code: "helper",
                message: "the socket helper for \(user.name) ended (\(finished.status)) without an answer: \(error.message)\(detail.isEmpty ? "" : "; it said: \(detail)")",
                errnoCode: nil)
        }
        switch message.result {
        case .success(let descriptor):
            if operation == .remove, let descriptor { close(descriptor) }
            return operation == .create ? descriptor : nil
        case .failure(let error):
            throw error
        }
    }

    /// This program's executable, which the helper runs as (it must be executable by the users).
    static func executablePath() throws(TenantSocketError) -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { throw TenantSocketFilesystem.failure("helper", "cannot find this program's executable") }
        var path = String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // After an upgrade replaced the file, the link names the old inode: run the new one at the same path.
        if path.hasSuffix(" (deleted)") { path.removeLast(" (deleted)".count) }
        return path
    }

    // MARK: Helper side

    /// The helper's whole run: does `operation` on `path` with this process's credentials, answers on
    /// `channel`, and returns the exit status (0 done, 1 refused, 2 the answer could not be sent).
    package static func serve(operation: Operation, path: String, channel: Int32 = STDOUT_FILENO) -> Int32 {
        let result: Result<Int32?, TenantSocketError>
        switch operation {
        case .create:
            do {
                result = .success(try TenantSocketFilesystem.createListeningSocketAsCurrentUser(at: path, expectedOwner: getuid()))
            } catch {
                result = .failure(error)
            }
        case .remove:
            do {
                try TenantSocketFilesystem.removeSocketAsCurrentUser(at: path)
                result = .success(nil)
            } catch {
                result = .failure(error)
            }
        }
        let sent = send(HelperMessage(result: result), on: channel)
        if case .success(let descriptor?) = result { close(descriptor) }
        guard sent else { return 2 }
        if case .failure = result { return 1 }
        return 0
    }

    /// Takes on a user's groups, gid and uid for good (real, effective and saved), as the helper's first act
    /// when root spawned it; fails unless afterwards the process is exactly that user and cannot get root back.
    package static func dropPrivileges(uid: UInt32, gid: UInt32, groups: [UInt32]) throws(TenantSocketError) {
        if getuid() == uid, geteuid() == uid, getgid() == gid, uid != 0 { return }
        guard groups.withUnsafeBufferPointer({ setgroups($0.count, $0.baseAddress) }) == 0 else {
            throw TenantSocketFilesystem.failure("credentials", "cannot take on the groups of uid \(uid)")
        }
        guard setgid(gid) == 0 else { throw TenantSocketFilesystem.failure("credentials", "cannot take on gid \(gid)") }
        guard setuid(uid) == 0 else { throw TenantSocketFilesystem.failure("credentials", "cannot take on uid \(uid)") }
        guard getuid() == uid, geteuid() == uid, getgid() == gid, getegid() == gid, uid == 0 || setuid(0) != 0 else {
            throw TenantSocketError(code: "credentials", message: "the helper did not become uid \(uid) for good", errnoCode: nil)
        }
    }

    /// The helper's whole run when root spawned it for a user: drops to the user, then `serve`s.
    package static func serve(operation: Operation, path: String, uid: UInt32, gid: UInt32, groups: [UInt32], channel: Int32 = STDOUT_FILENO) -> Int32 {
        do {
            try dropPrivileges(uid: uid, gid: gid, groups: groups)
        } catch {
            return send(HelperMessage(result: .failure(error)), on: channel) ? 1 : 2
        }
        return serve(operation: operation, path: path, channel: channel)
    }

    // MARK: The message

    /// One answer of the helper: success with an optional descriptor, or a structured failure.
    package struct HelperMessage: Sendable {
        /// The outcome.
        package var result: Result<Int32?, TenantSocketError>

        /// Creates a message.
        package init(result: Result<Int32?, TenantSocketError>) {
            self.result = result
        }

        /// The JSON part (the descriptor travels beside it).
        var json: JSON {
            switch result {
            case .success: return ["ok": true]
            case .failure(let error):
                var object: JSONObject = ["ok": false, "code": .string(error.code), "message": .string(error.message)]
                if let number = error.errnoCode { object["errno"] = JSON(Int(number)) }
                return .object(object)
            }
        }

        /// Reads the JSON part with the descriptor that came with it.
        init(json: JSON, descriptor: Int32?) throws(TenantSocketError) {
            guard let ok = json["ok"]?.boolValue else {
                throw TenantSocketError(code: "helper", message: "the socket helper's answer has no 'ok'", errnoCode: nil)
            }
            if ok {
                result = .success(descriptor)
            } else {
                result = .failure(TenantSocketError(
                    code: json["code"]?.stringValue ?? "helper",
                    message: json["message"]?.stringValue ?? "the socket helper failed without a reason",
                    errnoCode: json["errno"]?.intValue.flatMap { Int32(exactly: $0) }))
            }
        }
    }

    /// The control-message header size, rounded up to the alignment of `size_t` (Linux `CMSG_ALIGN`).
    static var controlHeaderSize: Int {
        let alignment = MemoryLayout<Int>.size
        return (MemoryLayout<cmsghdr>.size + alignment - 1) / alignment * alignment
    }

    /// Sends one message (and its descriptor as `SCM_RIGHTS`, when there is one) as one record.
    package static func send(_ message: HelperMessage, on channel: Int32) -> Bool {
        var payload = message.json.bytes
        var descriptor: Int32?
        if case .success(let passed?) = message.result { descriptor = passed }
        let controlLength = descriptor == nil ? 0 : controlHeaderSize + MemoryLayout<Int>.size
        let control = UnsafeMutableRawBufferPointer.allocate(byteCount: max(controlLength, 1), alignment: MemoryLayout<Int>.alignment)
        defer { control.deallocate() }
        control.initializeMemory(as: UInt8.self, repeating: 0)
        if let descriptor {
            var header = cmsghdr()
            header.cmsg_len = numericCast(controlHeaderSize + MemoryLayout<Int32>.size)
            header.cmsg_level = SOL_SOCKET
            header.cmsg_type = Int32(SCM_RIGHTS)
            control.storeBytes(of: header, toByteOffset: 0, as: cmsghdr.self)
            control.storeBytes(of: descriptor, toByteOffset: controlHeaderSize, as: Int32.self)
        }
        return payload.withUnsafeMutableBytes { bytes -> Bool in
            var vector = iovec(iov_base: bytes.baseAddress, iov_len: bytes.count)
            return withUnsafeMutablePointer(to: &vector) { vectorPointer -> Bool in
                var header = msghdr()
                header.msg_iov = vectorPointer
                header.msg_iovlen = 1
                if controlLength > 0 {
                    header.msg_control = control.baseAddress
                    header.msg_controllen = numericCast(controlLength)
                }
                while true {
                    let sent = sendmsg(channel, &header, Int32(MSG_NOSIGNAL))
                    if sent >= 0 { return sent == bytes.count }
                    if errno != EINTR { return false }
                }
            }
        }
    }

    /// Receives one message, without waiting: the helper has already exited when the daemon reads.
    package static func receive(on channel: Int32) throws(TenantSocketError) -> HelperMessage {
        var payload = [UInt8](repeating: 0, count: maximumMessageBytes)
        let controlCapacity = controlHeaderSize + 4 * MemoryLayout<Int>.size
        let control = UnsafeMutableRawBufferPointer.allocate(byteCount: controlCapacity, alignment: MemoryLayout<Int>.alignment)
        defer { control.deallocate() }
        control.initializeMemory(as: UInt8.self, repeating: 0)
        var controlLength = 0
        var flags: Int32 = 0
        let received = payload.withUnsafeMutableBytes { bytes -> Int in
            var vector = iovec(iov_base: bytes.baseAddress, iov_len: bytes.count)
            return withUnsafeMutablePointer(to: &vector) { vectorPointer -> Int in
                var header = msghdr()
                header.msg_iov = vectorPointer
                header.msg_iovlen = 1
                header.msg_control = control.baseAddress
                header.msg_controllen = numericCast(controlCapacity)
                var count: Int
                repeat {
                    count = recvmsg(channel, &header, Int32(MSG_DONTWAIT) | Int32(MSG_CMSG_CLOEXEC))
                } while count < 0 && errno == EINTR
                controlLength = Int(header.msg_controllen)
                flags = header.msg_flags
                return count
            }
        }
        guard received > 0 else {
            throw received == 0 || errno == EAGAIN
                ? TenantSocketError(code: "helper", message: "no answer", errnoCode: nil)
                : TenantSocketFilesystem.failure("helper", "cannot read the answer")
        }
        var descriptors: [Int32] = []
        if controlLength >= controlHeaderSize {
            let header = control.load(fromByteOffset: 0, as: cmsghdr.self)
            if header.cmsg_level == SOL_SOCKET, header.cmsg_type == Int32(SCM_RIGHTS) {
                let count = (Int(header.cmsg_len) - controlHeaderSize) / MemoryLayout<Int32>.size
                for index in 0..<max(count, 0) {
                    descriptors.append(control.load(fromByteOffset: controlHeaderSize + index * MemoryLayout<Int32>.size, as: Int32.self))
                }
            }
        }
        guard flags & Int32(MSG_TRUNC) == 0, flags & Int32(MSG_CTRUNC) == 0, descriptors.count <= 1 else {
            for descriptor in descriptors { close(descriptor) }
            throw TenantSocketError(code: "helper", message: "the socket helper's answer was malformed (truncated or too many descriptors)", errnoCode: nil)
        }
        let json: JSON
        do {
            json = try JSON.parse(Array(payload.prefix(received)))
        } catch {
            for descriptor in descriptors { close(descriptor) }
            throw TenantSocketError(code: "helper", message: "the socket helper's answer is not JSON", errnoCode: nil)
        }
        do {
            let message = try HelperMessage(json: json, descriptor: descriptors.first)
            // A failure carries no descriptor: close any that came with it.
            if case .failure = message.result { for descriptor in descriptors { close(descriptor) } }
            return message
        } catch {
            for descriptor in descriptors { close(descriptor) }
            throw error
        }
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var text = Substring(self)
        while let first = text.first, set.contains(first) { text = text.dropFirst() }
        while let last = text.last, set.contains(last) { text = text.dropLast() }
        return String(text)
    }
}
