import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What applying a change did.
package enum ConfigApplyOutcome: Sendable, Equatable {
    /// The file already held exactly this content; nothing was written.
    case unchanged
    /// The file was written; `backupPath` holds the pre-setup content (nil when setup created the file).
    case written(backupPath: String?)
}

/// What an undo did.
package enum ConfigUndoOutcome: Sendable, Equatable {
    /// The pre-setup content was put back from the backup.
    case restored(from: String)
    /// Setup had created the file, so it was removed.
    case removed
}

/// Reading, atomically writing, backing up and restoring a client's config file.
///
/// The first `apply` to a path keeps the pre-setup content in `<file>.rosetta-backup` (same mode), or, when the
/// file did not exist, leaves a `<file>.rosetta-created` marker; later applies never replace that backup. A
/// symlinked config file is written at its target (the link stays), as editors do; the backup and the marker
/// sit beside the path the user named.
package enum ConfigFiles {
    /// The backup path for a config file.
    package static func backupPath(for path: String) -> String { path + ".rosetta-backup" }

    /// The marker that records that setup created the file.
    package static func createdMarkerPath(for path: String) -> String { path + ".rosetta-created" }

    /// The file's text, or nil when it does not exist.
    package static func read(_ path: String) throws(ClientSetupError) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else {
            if FileManager.default.fileExists(atPath: path) {
                throw ClientSetupError(code: "io_failed", message: "cannot read \(path)", cause: String(cString: strerror(EACCES)))
            }
            return nil
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ClientSetupError(code: "unparsable_config", message: "\(path) is not UTF-8 text")
        }
        return text
    }

    /// Writes `text` to `path` (taking the backup first), unless the file already holds it.
    package static func apply(_ text: String, to path: String) throws(ClientSetupError) -> ConfigApplyOutcome {
        let before = try read(path)
        if before == text { return .unchanged }
        let backup = backupPath(for: path)
        let marker = createdMarkerPath(for: path)
        let hasBackup = FileManager.default.fileExists(atPath: backup) || FileManager.default.fileExists(atPath: marker)
        try createParentDirectories(of: path)
        let target = resolvedTarget(path)
        let mode = existingMode(target) ?? 0o600
        if !hasBackup {
            if let before {
                try writeAtomically(before, to: backup, mode: mode)
            } else {
                try writeAtomically("", to: marker, mode: 0o600)
            }
        }
        try writeAtomically(text, to: target, mode: mode)
        if FileManager.default.fileExists(atPath: backup) { return .written(backupPath: backup) }
        return .written(backupPath: nil)
    }

    /// Puts back the pre-setup state of `path` and forgets the backup.
    package static func undo(_ path: String) throws(ClientSetupError) -> ConfigUndoOutcome {
        let backup = backupPath(for: path)
        let marker = createdMarkerPath(for: path)
        if let original = try read(backup) {
            let mode = existingMode(backup) ?? 0o600
            try writeAtomically(original, to: resolvedTarget(path), mode: mode)
            unlink(backup)
            unlink(marker)
            return .restored(from: backup)
        }
        if FileManager.default.fileExists(atPath: marker) {
            if unlink(path) != 0 && errno != ENOENT {
                throw ClientSetupError(code: "io_failed", message: "cannot remove \(path)", cause: String(cString: strerror(errno)))
            }
            unlink(marker)
            return .removed
        }
        throw ClientSetupError(code: "nothing_to_undo", message: "no rosetta backup of \(path) exists (\(backup)); nothing to undo")
    }

    /// The file a write to `path` lands on: a symlink's final target, else the path itself.
    static func resolvedTarget(_ path: String) -> String {
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFLNK else { return path }
        guard let resolved = realpath(path, nil) else {
            // A dangling link: write where it points.
            if let destination = try? FileManager.default.destinationOfSymbolicLink(atPath: path) {
                return destination.hasPrefix("/") ? destination : (path as NSString).deletingLastPathComponent + "/" + destination
            }
            return path
        }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    private static func existingMode(_ path: String) -> mode_t? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return info.st_mode & 0o7777
    }

    /// Creates missing parent directories with mode 0700.
    private static func createParentDirectories(of path: String) throws(ClientSetupError) {
        let parent = (path as NSString).deletingLastPathComponent
        guard !parent.isEmpty, !FileManager.default.fileExists(atPath: parent) else { return }
        do {
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw ClientSetupError(code: "io_failed", message: "cannot create \(parent)", cause: "\(error)")
        }
    }

    /// Writes a temporary file in the same directory, fsyncs it, sets the mode and renames it over `path`.
    static func writeAtomically(_ text: String, to path: String, mode: mode_t) throws(ClientSetupError) {
        let directory = (path as NSString).deletingLastPathComponent
        var template = Array((directory.isEmpty ? "." : directory).utf8CString.dropLast())
        template.append(contentsOf: Array("/.rosetta-XXXXXX".utf8CString))
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else {
            throw ClientSetupError(code: "io_failed", message: "cannot create a temporary file in \(directory)", cause: String(cString: strerror(errno)))
        }
        let temporary = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var failure: String?
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count, failure == nil {
            let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno != EINTR { failure = String(cString: strerror(errno)) }
            } else {
                offset += written
            }
        }
        if failure == nil, fchmod(descriptor, mode) != 0 { failure = String(cString: strerror(errno)) }
        if failure == nil, fsync(descriptor) != 0 { failure = String(cString: strerror(errno)) }
        close(descriptor)
        if failure == nil, rename(temporary, path) != 0 { failure = String(cString: strerror(errno)) }
        if let failure {
            unlink(temporary)
            throw ClientSetupError(code: "io_failed", message: "cannot write \(path)", cause: failure)
        }
        let directoryDescriptor = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY)
        if directoryDescriptor >= 0 {
            fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }
}
