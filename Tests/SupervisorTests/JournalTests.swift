import Glibc
import Logging
import Testing
@testable import Supervisor

@Suite("journald fields and the native protocol")
struct JournalTests {
    @Test func metadataKeysBecomeJournalFieldNames() {
        #expect(JournalFields.fieldName(forMetadataKey: "tenant.uid") == "TENANT_UID")
        #expect(JournalFields.fieldName(forMetadataKey: "request.id") == "REQUEST_ID")
        #expect(JournalFields.fieldName(forMetadataKey: "model") == "MODEL")
        #expect(JournalFields.fieldName(forMetadataKey: "duration_ms") == "DURATION_MS")
        #expect(JournalFields.fieldName(forMetadataKey: "http-status/x") == "HTTP_STATUS_X")
        #expect(JournalFields.fieldName(forMetadataKey: "_private") == "ROSETTA__PRIVATE")
        #expect(JournalFields.fieldName(forMetadataKey: "2fa") == "ROSETTA_2FA")
        #expect(JournalFields.fieldName(forMetadataKey: "message") == "ROSETTA_MESSAGE")
        #expect(JournalFields.fieldName(forMetadataKey: "Ünïcode") == "ROSETTA__N_CODE")
        #expect(JournalFields.fieldName(forMetadataKey: String(repeating: "a", count: 100)).count == 64)
    }

    @Test func levelsMapToSyslogPriorities() {
        #expect(JournalFields.priority(.trace) == 7)
        #expect(JournalFields.priority(.debug) == 7)
        #expect(JournalFields.priority(.info) == 6)
        #expect(JournalFields.priority(.notice) == 5)
        #expect(JournalFields.priority(.warning) == 4)
        #expect(JournalFields.priority(.error) == 3)
        #expect(JournalFields.priority(.critical) == 2)
    }

    @Test func aRecordsFieldsAreInOrderWithMetadataSorted() {
        let fields = JournalFields.fields(
            message: "request finished", level: .info, identifier: "rosettad", label: "rosettad",
            metadata: ["status": "200", "tenant.uid": "1001", "request.id": "abc", "duration_ms": "12", "model": "m", "upstream": "u"],
            file: "Supervisor/X.swift", function: "f()", line: 42)
        let names = fields.map(\.name)
        #expect(names == [
            "MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "LOGGER", "CODE_FILE", "CODE_LINE", "CODE_FUNC",
            "DURATION_MS", "MODEL", "REQUEST_ID", "STATUS", "TENANT_UID", "UPSTREAM",
        ])
        #expect(fields.first { $0.name == "PRIORITY" }?.value == "6")
        #expect(fields.first { $0.name == "CODE_LINE" }?.value == "42")
        #expect(fields.first { $0.name == "TENANT_UID" }?.value == "1001")
    }

    @Test func nativeProtocolEncodingRoundTripsWithNewlines() throws {
        let fields: [(name: String, value: String)] = [("MESSAGE", "two\nlines"), ("PRIORITY", "6"), ("EMPTY", "")]
        let datagram = JournalFields.encode(fields)
        // A value with a newline is length-prefixed: NAME\n<le64><bytes>\n.
        let expectedPrefix = Array("MESSAGE\n".utf8) + [9, 0, 0, 0, 0, 0, 0, 0] + Array("two\nlines\n".utf8)
        #expect(Array(datagram.prefix(expectedPrefix.count)) == expectedPrefix)
        #expect(Array(datagram.dropFirst(expectedPrefix.count)) == Array("PRIORITY=6\nEMPTY=\n".utf8))
        let decoded = try #require(JournalFields.decode(datagram))
        #expect(decoded.map(\.name) == ["MESSAGE", "PRIORITY", "EMPTY"])
        #expect(decoded.map(\.value) == ["two\nlines", "6", ""])
    }

    @Test func destinationFollowsJournalStreamAndTheOverride() {
        let stderr: (device: UInt64, inode: UInt64) = (64769, 12345)
        #expect(LogDestination.choose(environment: ["JOURNAL_STREAM": "64769:12345"], standardError: stderr) == .journal)
        #expect(LogDestination.choose(environment: ["JOURNAL_STREAM": "64769:99"], standardError: stderr) == .plain)
        #expect(LogDestination.choose(environment: ["JOURNAL_STREAM": "junk"], standardError: stderr) == .plain)
        #expect(LogDestination.choose(environment: [:], standardError: stderr) == .plain)
        #expect(LogDestination.choose(environment: ["ROSETTAD_LOG": "journal"], standardError: nil) == .journal)
        #expect(LogDestination.choose(environment: ["ROSETTAD_LOG": "plain", "JOURNAL_STREAM": "64769:12345"], standardError: stderr) == .plain)
    }

    @Test func theHandlerReachesAJournalSocket() throws {
        var template = Array("/tmp/rosetta-journal-XXXXXX".utf8CString)
        let directory = String(cString: try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }))
        let path = directory + "/socket"
        let receiver = try #require(Self.datagramReceiver(boundTo: path))
        defer { close(receiver); unlink(path) }
        let journal = try #require(JournalSocket(path: path))
        var logger = Logger(label: "rosettad") { label in JournalLogHandler(label: label, level: .info, socket: journal) }
        logger[metadataKey: "tenant.uid"] = "1001"
        logger.info("request finished", metadata: ["request.id": "r1", "status": "200"])
        logger.debug("below the level")
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = buffer.withUnsafeMutableBytes { recv(receiver, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        #expect(count > 0)
        let fields = try #require(JournalFields.decode(Array(buffer.prefix(max(count, 0)))))
        let byName = Dictionary(fields.map { ($0.name, $0.value) }, uniquingKeysWith: { $1 })
        #expect(byName["MESSAGE"] == "request finished")
        #expect(byName["PRIORITY"] == "6")
        #expect(byName["TENANT_UID"] == "1001")
        #expect(byName["REQUEST_ID"] == "r1")
        #expect(byName["STATUS"] == "200")
        #expect(byName["SYSLOG_IDENTIFIER"] == "rosettad")
        #expect(byName["CODE_FILE"]?.hasSuffix("JournalTests.swift") == true)
        // The debug record was below the level: nothing else arrived.
        let more = buffer.withUnsafeMutableBytes { recv(receiver, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        #expect(more < 0)
    }

    /// Through libsystemd: where no journald runs and we are root (CI), the test takes journald's socket path itself
    /// and checks what `sd_journal_sendv` framed; where journald runs, the record must be accepted.
    @Test func theHandlerReachesJournaldThroughLibsystemd() throws {
        let path = "/run/systemd/journal/socket"
        var existing = stat()
        if lstat(path, &existing) == 0 {
            #expect(JournalSink.libsystemd.send([("MESSAGE", "rosettad journal test"), ("PRIORITY", "7")]))
            return
        }
        guard geteuid() == 0 else {
            #expect(!JournalSink.libsystemd.send([("MESSAGE", "no journald here")]))
            return
        }
        for directory in ["/run/systemd", "/run/systemd/journal"] where mkdir(directory, 0o755) != 0 {
            #expect(errno == EEXIST)
        }
        let receiver = try #require(Self.datagramReceiver(boundTo: path))
        defer { close(receiver); unlink(path) }
        var logger = Logger(label: "rosettad") { label in JournalLogHandler(label: label, level: .info, sink: .libsystemd) }
        logger[metadataKey: "tenant.uid"] = "1002"
        logger.warning("two\nlines", metadata: ["model": "gpt-4o", "duration_ms": "12"])
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = buffer.withUnsafeMutableBytes { recv(receiver, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        try #require(count > 0)
        let fields = try #require(JournalFields.decode(Array(buffer.prefix(count))))
        let byName = Dictionary(fields.map { ($0.name, $0.value) }, uniquingKeysWith: { $1 })
        #expect(byName["MESSAGE"] == "two\nlines")
        #expect(byName["PRIORITY"] == "4")
        #expect(byName["TENANT_UID"] == "1002")
        #expect(byName["MODEL"] == "gpt-4o")
        #expect(byName["DURATION_MS"] == "12")
    }

    /// A datagram socket bound to `path` (the journal's side of the protocol), or `nil` when it cannot be bound.
    private static func datagramReceiver(boundTo path: String) -> Int32? {
        let receiver = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard receiver >= 0 else { return nil }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { for (offset, byte) in path.utf8.enumerated() { $0[offset] = byte } }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(receiver, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else {
            close(receiver)
            return nil
        }
        return receiver
    }
}
