#if canImport(Glibc)
import Glibc
#endif
import Subprocess
#if canImport(System)
import System
#else
import SystemPackage
#endif

/// How an ssh process ended: its exit code (`nil` when a signal ended it) and the tail of its standard error.
package struct SSHExit: Sendable, Equatable {
    /// The exit code, or `nil` when a signal ended it.
    package var code: Int32?
    /// Its standard error (the last 8 KiB), lines ending in `\r\n` as ssh writes them.
    package var stderr: String
    /// The signal that ended it, when one did.
    package var signal: Int32?

    /// Creates an exit record.
    package init(code: Int32?, stderr: String, signal: Int32? = nil) {
        self.code = code
        self.stderr = stderr
        self.signal = signal
    }
}

/// Spawns ssh with swift-subprocess: in its own session, its signal mask reset (so SIGTERM stops it), stderr
/// captured, and torn down with SIGTERM to its process group then SIGKILL.
package enum SSHProcess {
    /// The most standard error kept.
    static let stderrLimit = 8192

    /// Runs ssh until it exits, or until `stop` yields (or finishes), when it is terminated; never throws.
    ///
    /// `onStart` gets the process ID once ssh runs. A spawn failure comes back as exit code 127 with the reason.
    package static func run(
        executable: String, arguments: [String], identity: SSHSpawnIdentity?, grace: Duration,
        stop: AsyncStream<Void>, onStart: @Sendable (Int32) async -> Void = { _ in }
    ) async -> SSHExit {
        var options = PlatformOptions()
        options.createSession = true
        options.teardownSequence = [.send(signal: .terminate, toProcessGroup: true, allowedDurationToNextStep: grace)]
        var environment = Environment.inherit
        var command = (executable: executable, arguments: arguments)
        if let identity {
            // System mode: ssh runs as the tenant. The ids are changed by `setpriv` (util-linux), a separate
            // single-threaded process that then executes ssh: asking swift-subprocess for `userID`/`groupID`/
            // `supplementaryGroups` runs glibc's `setgroups` in a child forked from this multi-threaded daemon,
            // which can deadlock in glibc's set-id broadcast to threads the child does not have.
            command = identity.launchCommand(executable: executable, arguments: arguments)
            environment = .inherit.updating(["HOME": identity.home, "USER": identity.userName, "LOGNAME": identity.userName])
        }
        let teardown = options.teardownSequence
        do {
            let result = try await Subprocess.run(
                .path(FilePath(command.executable)), arguments: Arguments(command.arguments), environment: environment,
                platformOptions: options, input: .none, output: .discarded, error: .sequence
            ) { execution in
                await onStart(execution.processIdentifier.value)
                return await withTaskGroup(of: [UInt8]?.self, returning: [UInt8].self) { group in
                    group.addTask {
                        var collected: [UInt8] = []
                        do {
                            for try await buffer in execution.standardError {
                                buffer.withUnsafeBytes { collected.append(contentsOf: $0) }
                                if collected.count > stderrLimit * 2 { collected.removeFirst(collected.count - stderrLimit) }
                            }
                        } catch {
                            // The pipe failed: what was read so far is all there is.
                        }
                        return Array(collected.suffix(stderrLimit))
                    }
                    group.addTask {
                        for await _ in stop { break }
                        if !Task.isCancelled { await execution.teardown(using: teardown) }
                        return nil
                    }
                    var stderr: [UInt8] = []
                    for await finished in group {
                        if let finished {
                            stderr = finished
                            group.cancelAll()
                        }
                    }
                    return stderr
                }
            }
            let stderr = String(decoding: result.closureResult, as: UTF8.self)
            switch result.terminationStatus {
            case .exited(let code): return SSHExit(code: code, stderr: stderr)
            case .signaled(let signal): return SSHExit(code: nil, stderr: stderr, signal: signal)
            }
        } catch {
            return SSHExit(code: 127, stderr: "could not run \(executable): \(error)")
        }
    }

    /// Runs a short ssh command (a ControlMaster `-O` command) to completion within `timeout`.
    package static func runToCompletion(
        executable: String, arguments: [String], identity: SSHSpawnIdentity?, timeout: Duration
    ) async -> SSHExit {
        let (stop, continuation) = AsyncStream<Void>.makeStream()
        return await withTaskGroup(of: SSHExit?.self, returning: SSHExit.self) { group in
            group.addTask {
                await run(executable: executable, arguments: arguments, identity: identity, grace: .milliseconds(500), stop: stop)
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                if !Task.isCancelled { continuation.finish() }
                return nil
            }
            var exit = SSHExit(code: nil, stderr: "")
            for await finished in group {
                if let finished {
                    exit = finished
                    continuation.finish()
                    group.cancelAll()
                }
            }
            return exit
        }
    }
}

/// Checks whether a Unix socket accepts connections (the forward is listening).
package enum UnixSocketProbe {
    /// Whether a connect to `path` succeeds at once.
    package static func accepts(_ path: String) -> Bool {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in bytes.enumerated() { buffer[index] = byte }
            buffer[bytes.count] = 0
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return result == 0
    }
}
