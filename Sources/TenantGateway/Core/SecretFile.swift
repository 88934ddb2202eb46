#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failure reading or writing a file that holds a secret; the message never contains the secret.
package struct SecretFileError: Error, Sendable, CustomStringConvertible {
    /// A stable code (`open_failed`, `unsafe_file`, `write_failed`, …).
    package var code: String
    /// What went wrong, naming the path.
    package var message: String
    /// The `errno` value behind it, when a system call failed.
    package var errno: Int32?

    /// The message, with the system's reason when known.
    package var description: String {
        guard let errno else { return message }
        return "\(message): \(String(cString: strerror(errno)))"
    }
}

/// Reads and writes small files holding secrets: mode 0600, never through a symlink, replaced atomically.
package enum SecretFile {
    /// Creates a directory (and missing parents) with mode 0700 for the last component, refusing symlinks.
    package static func ensurePrivateDirectory(_ path: String) throws(SecretFileError) {
        var partial = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            partial += "/" + component
            if mkdir(partial, 0o700) != 0, errno != EEXIST {
                throw SecretFileError(code: "mkdir_failed", message: "cannot create directory \(partial)", errno: errno)
            }
        }
        var info = stat()
        guard lstat(path, &info) == 0 else {
            throw SecretFileError(code: "stat_failed", message: "cannot inspect directory \(path)", errno: errno)
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw SecretFileError(code: "unsafe_file", message: "\(path) is not a directory (symlinks are refused)", errno: nil)
        }
        guard info.st_uid == geteuid() else {
            throw SecretFileError(code: "unsafe_file", message: "\(path) is owned by uid \(info.st_uid), not by this user", errno: nil)
        }
        if info.st_mode & 0o077 != 0, chmod(path, 0o700) != 0 {
            throw SecretFileError(code: "chmod_failed", message: "cannot make \(path) private (mode 0700)", errno: errno)
        }
    }

    /// Reads a secret file, or returns `nil` when it does not exist.
    ///
    /// Refuses a symlink, a non-regular file, a file owned by someone else, or one readable by
    /// group or others (its content may have leaked).
    package static func read(_ path: String) throws(SecretFileError) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if descriptor < 0 {
            if errno == ENOENT { return nil }
            if errno == ELOOP {
                throw SecretFileError(code: "unsafe_file", message: "\(path) is a symlink; refusing to read a secret through it", errno: nil)
            }
            throw SecretFileError(code: "open_failed", message: "cannot open \(path)", errno: errno)
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            throw SecretFileError(code: "stat_failed", message: "cannot inspect \(path)", errno: errno)
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw SecretFileError(code: "unsafe_file", message: "\(path) is not a regular file", errno: nil)
        }
        guard info.st_uid == geteuid() else {
            throw SecretFileError(code: "unsafe_file", message: "\(path) is owned by uid \(info.st_uid), not by this user", errno: nil)
        }
        guard info.st_mode & 0o077 == 0 else {
            throw SecretFileError(code: "unsafe_file", message: "\(path) is readable by other users (mode \(String(info.st_mode & 0o777, radix: 8))); delete it or chmod 600", errno: nil)
        }
        var contents: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw SecretFileError(code: "read_failed", message: "cannot read \(path)", errno: errno)
            }
            if count == 0 { break }
            contents.append(contentsOf: buffer[0..<count])
            if contents.count > 1 << 20 {
                throw SecretFileError(code: "unsafe_file", message: "\(path) is larger than 1 MiB; not a secret file of ours", errno: nil)
            }
        }
        return contents
    }

    /// Replaces a secret file atomically: writes a new 0600 file beside it (never following a symlink), syncs it, renames it over.
    package static func write(_ contents: [UInt8], to path: String) throws(SecretFileError) {
        var random = SystemRandomNumberGenerator()
        let temporary = "\(path).tmp-\(getpid())-\(String(random.next() as UInt32, radix: 16))"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw SecretFileError(code: "open_failed", message: "cannot create \(temporary)", errno: errno)
        }
        var written = 0
        while written < contents.count {
            let count = contents.withUnsafeBytes { bytes in
                Glibc.write(descriptor, bytes.baseAddress! + written, bytes.count - written)
            }
            if count < 0 {
                if errno == EINTR { continue }
                let failure = errno
                close(descriptor)
                unlink(temporary)
                throw SecretFileError(code: "write_failed", message: "cannot write \(temporary)", errno: failure)
            }
            written += count
        }
        if fchmod(descriptor, 0o600) != 0 || fsync(descriptor) != 0 {
            let failure = errno
            close(descriptor)
            unlink(temporary)
            throw SecretFileError(code: "write_failed", message: "cannot finish \(temporary)", errno: failure)
        }
        close(descriptor)
        guard rename(temporary, path) == 0 else {
            let failure = errno
            unlink(temporary)
            throw SecretFileError(code: "rename_failed", message: "cannot move the new file into place at \(path)", errno: failure)
        }
    }
}
