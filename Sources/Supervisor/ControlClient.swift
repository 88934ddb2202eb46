#if canImport(Glibc)
import Glibc
#endif
import TenantGateway

/// A failure talking to the daemon over the user's socket, with the advice to show the user.
package struct ControlClientError: Error, Sendable, CustomStringConvertible {
    /// A stable code (`not_running`, `refused`, `bad_response`, `http_error`).
    package var code: String
    /// What happened and what to do.
    package var message: String

    /// The message.
    package var description: String { message }
}

/// A minimal HTTP/1.1 client for the control routes on the tenant's Unix socket, used by `rosetta`.
package struct ControlClient: Sendable {
    /// The socket path.
    package var socketPath: String
    /// How long to wait for the daemon's answer.
    package var timeoutSeconds: Int = 10
    /// What to tell the user when nothing listens on the socket.
    package var startHint = "start it with `rosettad serve --user`"

    /// Creates a client for a socket path.
    package init(socketPath: String) {
        self.socketPath = socketPath
    }

    /// Sends a request and returns the JSON body of a 2xx answer; a non-2xx answer throws with the daemon's message.
    package func call(method: String, path: String, body: JSON? = nil) throws(ControlClientError) -> JSON {
        let descriptor = try connect()
        defer { close(descriptor) }
        let payload = body?.bytes ?? []
        let contentType = body == nil ? "" : "Content-Type: application/json\r\n"
        let request = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\(contentType)Content-Length: \(payload.count)\r\n\r\n"
        try send(Array(request.utf8) + payload, on: descriptor)
        let raw = try receiveAll(from: descriptor)
        let (status, body) = try parseResponse(raw)
        let json = try? JSON.parse(body)
        guard (200..<300).contains(status) else {
            let message = json?["error"]?["message"]?.stringValue ?? String(decoding: body, as: UTF8.self)
            throw ControlClientError(code: "http_error", message: "rosettad answered \(status): \(message)")
        }
        guard let json else {
            throw ControlClientError(code: "bad_response", message: "rosettad sent a response that is not JSON")
        }
        return json
    }

    private func connect() throws(ControlClientError) -> Int32 {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else {
            throw ControlClientError(code: "socket_failed", message: "cannot create a socket: \(String(cString: strerror(errno)))")
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(socketPath.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard pathBytes.count < capacity else {
            close(descriptor)
            throw ControlClientError(code: "path_too_long", message: "the socket path \(socketPath) is longer than \(capacity - 1) bytes")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: pathBytes)
            buffer[pathBytes.count] = 0
        }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard result == 0 else {
            let failure = errno
            close(descriptor)
            switch failure {
            case ENOENT, ECONNREFUSED:
                throw ControlClientError(code: "not_running", message: "rosettad is not running at \(socketPath) (\(startHint))")
            case EACCES, EPERM:
                throw ControlClientError(code: "refused", message: "no permission to use \(socketPath); it belongs to another user")
            default:
                throw ControlClientError(code: "connect_failed", message: "cannot connect to \(socketPath): \(String(cString: strerror(failure)))")
            }
        }
        return descriptor
    }

    private func send(_ bytes: [UInt8], on descriptor: Int32) throws(ControlClientError) {
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if count < 0 {
                if errno == EINTR { continue }
                throw ControlClientError(code: "send_failed", message: "lost the connection to rosettad: \(String(cString: strerror(errno)))")
            }
            offset += count
        }
    }

    private func receiveAll(from descriptor: Int32) throws(ControlClientError) -> [UInt8] {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    throw ControlClientError(code: "timeout", message: "rosettad did not answer within \(timeoutSeconds) s")
                }
                throw ControlClientError(code: "recv_failed", message: "lost the connection to rosettad: \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }
            received.append(contentsOf: buffer[0..<count])
            if received.count > 16 << 20 {
                throw ControlClientError(code: "bad_response", message: "rosettad's answer is unexpectedly large")
            }
        }
        if received.isEmpty {
            throw ControlClientError(code: "refused", message: "rosettad closed the connection without answering (is \(socketPath) another user's socket?)")
        }
        return received
    }

    /// Splits a raw HTTP/1.1 response into its status and its (de-chunked) body.
    private func parseResponse(_ raw: [UInt8]) throws(ControlClientError) -> (Int, [UInt8]) {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let headEnd = raw.indices.first(where: { raw[$0...].starts(with: separator) }) else {
            throw ControlClientError(code: "bad_response", message: "rosettad sent an incomplete HTTP response")
        }
        let head = String(decoding: raw[..<headEnd], as: UTF8.self)
        let lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
        let statusParts = lines.first?.split(separator: " ") ?? []
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else {
            throw ControlClientError(code: "bad_response", message: "rosettad sent a malformed status line")
        }
        let chunked = lines.dropFirst().contains { $0.lowercased().hasPrefix("transfer-encoding:") && $0.lowercased().contains("chunked") }
        var body = Array(raw[(headEnd + 4)...])
        if chunked { body = Self.dechunk(body) }
        return (status, body)
    }

    private static func dechunk(_ data: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        var index = 0
        while index < data.count {
            guard let lineEnd = data[index...].firstIndex(of: 13), lineEnd + 1 < data.count else { break }
            let sizeText = String(decoding: data[index..<lineEnd], as: UTF8.self).split(separator: ";").first.map(String.init) ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: " "), radix: 16), size > 0 else { break }
            let start = lineEnd + 2
            let end = min(start + size, data.count)
            output.append(contentsOf: data[start..<end])
            index = end + 2
        }
        return output
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        var text = Substring(self)
        while text.first == set { text = text.dropFirst() }
        while text.last == set { text = text.dropLast() }
        return String(text)
    }
}
