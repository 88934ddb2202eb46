#if canImport(Glibc)
import Glibc
#endif
import CPAM

/// Why PAM refused an account, or why the check could not be made; every case is a refusal.
package struct PAMRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable code: `service_missing`, `start_failed` or `account_refused`.
    package var code: String
    /// The PAM return code, when PAM was asked.
    package var pamCode: Int32?
    /// What to tell the user and the admin (PAM's own message included).
    package var message: String

    /// The message.
    package var description: String { message }
}

/// Asks PAM (`pam_acct_mgmt`) whether an account may use rosettad, refusing on anything but success.
///
/// A service file that does not exist would make PAM silently fall back to `other` (on Debian:
/// allow everyone), so its absence is a refusal before PAM is asked.
package struct PAMAccountCheck: Sendable {
    /// The PAM service name (`rosettad`).
    package var service: String
    /// The directory holding the service files; `/etc/pam.d` unless a test points elsewhere.
    package var configDirectory: String

    /// Creates a check for a service in a PAM configuration directory.
    package init(service: String = "rosettad", configDirectory: String = "/etc/pam.d") {
        self.service = service
        self.configDirectory = configDirectory
    }

    /// The service file PAM would read.
    package var serviceFilePath: String { configDirectory + "/" + service }

    /// Maps a `pam_acct_mgmt` result to a decision: only `PAM_SUCCESS` allows, everything else refuses with PAM's message.
    package static func decision(code: Int32, pamMessage: String, user: String, service: String) -> Result<Void, PAMRefusal> {
        if code == PAM_SUCCESS { return .success(()) }
        return .failure(PAMRefusal(
            code: "account_refused", pamCode: code,
            message: "PAM service '\(service)' refused account '\(user)': \(pamMessage) (PAM code \(code))"))
    }

    /// Checks an account; throws `PAMRefusal` unless PAM answers `PAM_SUCCESS`. Blocks while PAM runs.
    package func check(user: String) throws(PAMRefusal) {
        var status = stat()
        guard stat(serviceFilePath, &status) == 0, status.st_mode & 0o170000 == 0o100000 else {
            throw PAMRefusal(
                code: "service_missing", pamCode: nil,
                message: "the PAM service file \(serviceFilePath) does not exist, so nobody may use rosettad; ask the admin to install it")
        }
        var conversation = pam_conv(conv: { _, _, _, _ in PAM_CONV_ERR }, appdata_ptr: nil)
        var handle: OpaquePointer?
        let started = pam_start_confdir(service, user, &conversation, configDirectory, &handle)
        guard started == PAM_SUCCESS, let handle else {
            let text = handle.flatMap { pam_strerror($0, started) }.map { String(cString: $0) } ?? "pam_start failed"
            if let handle { pam_end(handle, started) }
            throw PAMRefusal(code: "start_failed", pamCode: started, message: "PAM could not start service '\(service)': \(text) (PAM code \(started))")
        }
        let code = pam_acct_mgmt(handle, 0)
        let text = pam_strerror(handle, code).map { String(cString: $0) } ?? "PAM code \(code)"
        pam_end(handle, code)
        if case .failure(let refusal) = Self.decision(code: code, pamMessage: text, user: user, service: service) {
            throw refusal
        }
    }
}
