import CCurl
import Foundation
import Logging
import Synchronization

/// The thread-safe side of the one thread that drives all upstream transfers through a curl multi handle.
///
/// Any thread hands commands (start, cancel, resume receiving) to the loop through a locked queue and
/// wakes the thread with `curl_multi_wakeup`; only the loop's own thread touches the multi handle and
/// the easy handles otherwise. The multi handle's connection cache keeps connections for reuse.
final class CurlMultiLoop: Sendable {
    /// Work for the curl thread.
    enum Command: Sendable {
        /// Send a prepared request; its channel receives the response.
        case start(UpstreamTransferChannel, PreparedUpstreamRequest)
        /// Abort the channel's transfer, closing its connection.
        case cancel(UpstreamTransferChannel)
        /// The consumer drained the buffer: resume receiving the channel's paused transfer.
        case resumeReceiving(UpstreamTransferChannel)
    }

    private enum Lifecycle {
        /// The thread runs and accepts commands.
        case running
        /// Shutdown was requested; the thread fails what is pending and exits.
        case stopping
        /// The thread has released the multi handle.
        case stopped
    }

    private struct SharedState {
        var lifecycle: Lifecycle = .running
        var commands: [Command] = []
        var activeTransfers = 0
        var pausedTransfers = 0
    }

    /// The multi handle, shared with the thread that owns it.
    ///
    /// Unchecked: only the loop thread uses it, except `curl_multi_wakeup` (documented thread-safe),
    /// which is called under the lock and only while the lifecycle is `running`, so never after cleanup.
    private struct MultiHandle: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer
    }

    private let shared = Mutex(SharedState())
    private let multi: MultiHandle

    /// The error pending and future requests fail with after shutdown.
    static let shutdownError = UpstreamError(.shutdown, message: "the upstream HTTP client is shut down")

    /// Creates the multi handle and starts the thread that drives it.
    init(logger: Logger) {
        precondition(CurlGlobal.initialized, "curl_global_init failed")
        guard let pointer = curl_multi_init() else {
            preconditionFailure("curl_multi_init failed (out of memory)")
        }
        multi = MultiHandle(pointer: pointer)
        let thread = Thread { [self] in
            CurlMultiWorker(loop: self, multi: multi.pointer, logger: logger).run()
        }
        thread.name = "upstream-curl"
        thread.start()
    }

    /// Whether the loop still accepts requests.
    var isRunning: Bool {
        shared.withLock { $0.lifecycle == .running }
    }

    /// The transfers currently added to the multi handle, as last published by the thread.
    var activeTransferCount: Int {
        shared.withLock { $0.activeTransfers }
    }

    /// The transfers whose receiving is paused for back-pressure, as last published by the thread.
    var pausedTransferCount: Int {
        shared.withLock { $0.pausedTransfers }
    }

    /// Queues a command and wakes the thread; after shutdown a start fails at once and the rest is dropped.
    func submit(_ command: Command) {
        let rejected: Command? = shared.withLock { state in
            guard state.lifecycle == .running else { return command }
            let wasEmpty = state.commands.isEmpty
            state.commands.append(command)
            if wasEmpty {
                // The thread drains the whole queue after each wakeup, so one wakeup per batch suffices.
                _ = curl_multi_wakeup(multi.pointer)
            }
            return nil
        }
        if case .start(let channel, _)? = rejected {
            channel.transferCompleted(.failure(Self.shutdownError))
        }
    }

    /// Asks the thread to fail everything pending and exit; returns at once.
    func shutdown() {
        shared.withLock { state in
            guard state.lifecycle == .running else { return }
            state.lifecycle = .stopping
            _ = curl_multi_wakeup(multi.pointer)
        }
    }

    // MARK: For the loop thread

    /// Takes the queued commands; `stopping` tells the thread to wind down.
    fileprivate func takeCommands() -> (commands: [Command], stopping: Bool) {
        shared.withLock { state in
            let commands = state.commands
            state.commands.removeAll(keepingCapacity: true)
            return (commands, state.lifecycle != .running)
        }
    }

    /// Publishes how many transfers run and how many of them are paused, for diagnostics and tests.
    fileprivate func publishTransferCounts(active: Int, paused: Int) {
        shared.withLock { state in
            state.activeTransfers = active
            state.pausedTransfers = paused
        }
    }

    /// Marks the loop stopped and returns the commands that arrived meanwhile.
    fileprivate func finishStopping() -> [Command] {
        shared.withLock { state in
            state.lifecycle = .stopped
            state.activeTransfers = 0
            state.pausedTransfers = 0
            let commands = state.commands
            state.commands.removeAll()
            return commands
        }
    }
}

/// The curl thread's own state: the multi handle, the running transfers and a pool of idle easy handles.
///
/// Lives and dies on the loop thread; nothing in it is shared.
private final class CurlMultiWorker {
    private let loop: CurlMultiLoop
    private let multi: UnsafeMutableRawPointer
    private let logger: Logger
    private var active: [ObjectIdentifier: ActiveTransfer] = [:]
    private var idleEasyHandles: [CurlEasyHandle] = []
    private var publishedCounts = (active: 0, paused: 0)

    private static let maxIdleEasyHandles = 32
    private static let pollTimeoutWithoutDeadlineMs: Int32 = 60_000

    init(loop: CurlMultiLoop, multi: UnsafeMutableRawPointer, logger: Logger) {
        self.loop = loop
        self.multi = multi
        self.logger = logger
    }

    func run() {
        logger.debug("upstream curl thread started")
        while true {
            let (commands, stopping) = loop.takeCommands()
            for command in commands {
                handle(command, stopping: stopping)
            }
            if stopping { break }
            var running: Int32 = 0
            _ = curl_multi_perform(multi, &running)
            collectFinishedTransfers()
            let timeoutMs = enforceIdleTimeouts()
            publishCounts()
            _ = curl_multi_poll(multi, nil, 0, timeoutMs, nil)
        }
        for transfer in Array(active.values) {
            end(transfer, with: .failure(CurlMultiLoop.shutdownError))
        }
        for command in loop.finishStopping() {
            handle(command, stopping: true)
        }
        idleEasyHandles.removeAll()
        curl_multi_cleanup(multi)
        logger.debug("upstream curl thread stopped")
    }

    private func publishCounts() {
        let paused = active.values.reduce(0) { $0 + ($1.isPaused ? 1 : 0) }
        guard active.count != publishedCounts.active || paused != publishedCounts.paused else { return }
        publishedCounts = (active.count, paused)
        loop.publishTransferCounts(active: active.count, paused: paused)
    }

    private func handle(_ command: CurlMultiLoop.Command, stopping: Bool) {
        switch command {
        case .start(let channel, let request):
            if stopping {
                channel.transferCompleted(.failure(CurlMultiLoop.shutdownError))
            } else if channel.wantsTransfer {
                start(channel, request)
            }
        case .cancel(let channel):
            if let transfer = active[ObjectIdentifier(channel)] {
                end(transfer, with: .failure(UpstreamError(.cancelled, message: "the request to \(transfer.request.targetDescription) was cancelled")))
            }
        case .resumeReceiving(let channel):
            if let transfer = active[ObjectIdentifier(channel)], transfer.isPaused {
                transfer.isPaused = false
                transfer.touch()
                _ = rosetta_easy_unpause(transfer.easy.pointer)
            }
        }
    }

    private func start(_ channel: UpstreamTransferChannel, _ request: PreparedUpstreamRequest) {
        guard let easy = idleEasyHandles.popLast() ?? CurlEasyHandle() else {
            channel.transferCompleted(.failure(UpstreamError(.transfer, message: "could not allocate a curl handle for \(request.targetDescription)")))
            return
        }
        let transfer = ActiveTransfer(channel: channel, request: request, easy: easy)
        do {
            try transfer.configure()
        } catch {
            recycle(easy)
            channel.transferCompleted(.failure(error))
            return
        }
        let added = curl_multi_add_handle(multi, easy.pointer)
        guard added == CURLM_OK else {
            recycle(easy)
            let reason = String(cString: curl_multi_strerror(added))
            channel.transferCompleted(.failure(UpstreamError(.transfer, message: "could not start the request to \(request.targetDescription): \(reason)")))
            return
        }
        active[ObjectIdentifier(channel)] = transfer
        logger.trace("upstream request started", metadata: [
            "upstream": "\(request.targetDescription)", "method": "\(request.request.method)",
        ])
    }

    private func collectFinishedTransfers() {
        var queued: Int32 = 0
        while let message = curl_multi_info_read(multi, &queued) {
            guard rosetta_multi_message_is_done(message) != 0 else { continue }
            let code = rosetta_multi_message_result(message)
            var privateData: UnsafeMutableRawPointer?
            _ = rosetta_easy_getinfo_pointer(message.pointee.easy_handle, CURLINFO_PRIVATE, &privateData)
            guard let privateData else { continue }
            let transfer = Unmanaged<ActiveTransfer>.fromOpaque(privateData).takeUnretainedValue()
            if code == CURLE_OK {
                transfer.deliverHeadIfMissing()
                end(transfer, with: .success(()))
            } else {
                end(transfer, with: .failure(transfer.abortReason ?? transfer.error(for: code)))
            }
        }
    }

    /// Aborts transfers that were silent for longer than their idle timeout; returns the poll timeout.
    private func enforceIdleTimeouts() -> Int32 {
        var nearest: ContinuousClock.Instant?
        var expired: [ActiveTransfer] = []
        let now = ContinuousClock.now
        for transfer in active.values {
            guard let deadline = transfer.idleDeadline else { continue }
            if deadline <= now {
                expired.append(transfer)
            } else if nearest.map({ deadline < $0 }) ?? true {
                nearest = deadline
            }
        }
        for transfer in expired {
            let timeout = Milliseconds(transfer.request.request.idleTimeout)
            end(transfer, with: .failure(UpstreamError(
                .timedOut,
                message: "no data from \(transfer.request.targetDescription) for \(timeout) (idle timeout)"
            )))
        }
        guard let nearest else { return Self.pollTimeoutWithoutDeadlineMs }
        let remaining = Milliseconds(nearest - now).roundedUp
        return Int32(clamping: max(1, min(remaining, Int(Self.pollTimeoutWithoutDeadlineMs))))
    }

    /// Removes a transfer from the multi handle (closing its connection if unfinished) and reports its end.
    private func end(_ transfer: ActiveTransfer, with result: Result<Void, UpstreamError>) {
        _ = curl_multi_remove_handle(multi, transfer.easy.pointer)
        active.removeValue(forKey: ObjectIdentifier(transfer.channel))
        transfer.channel.transferCompleted(result)
        switch result {
        case .success:
            logger.debug("upstream response finished", metadata: [
                "upstream": "\(transfer.request.targetDescription)", "method": "\(transfer.request.request.method)",
                "status": "\(transfer.status ?? 0)",
            ])
        case .failure(let error):
            logger.debug("upstream request ended early", metadata: [
                "upstream": "\(transfer.request.targetDescription)", "method": "\(transfer.request.request.method)",
                "error": "\(error)",
            ])
        }
        recycle(transfer.easy)
    }

    private func recycle(_ easy: CurlEasyHandle) {
        curl_easy_reset(easy.pointer)
        if idleEasyHandles.count < Self.maxIdleEasyHandles {
            idleEasyHandles.append(easy)
        }
    }
}

/// One curl easy handle with its error buffer; cleaned up when released.
private final class CurlEasyHandle {
    let pointer: UnsafeMutableRawPointer
    let errorBuffer: UnsafeMutablePointer<CChar>

    init?() {
        guard let pointer = curl_easy_init() else { return nil }
        self.pointer = pointer
        errorBuffer = .allocate(capacity: Int(rosetta_error_size))
        errorBuffer.initialize(repeating: 0, count: Int(rosetta_error_size))
    }

    deinit {
        curl_easy_cleanup(pointer)
        errorBuffer.deallocate()
    }
}

/// A transfer added to the multi handle: its options, callbacks and idle clock; only the curl thread uses it.
///
/// curl's callbacks reach it through an unretained `Unmanaged` pointer; the worker's table of active
/// transfers keeps it alive for exactly as long as the easy handle is in the multi handle.
private final class ActiveTransfer {
    let channel: UpstreamTransferChannel
    let request: PreparedUpstreamRequest
    let easy: CurlEasyHandle
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private var bodyStorage: UnsafeMutableRawBufferPointer?
    private var headParser = UpstreamResponseHeadParser()
    private var headDelivered = false
    private var connected = false
    private var uploadedBytes: curl_off_t = 0
    /// Receiving is paused because the consumer is behind.
    var isPaused = false
    /// When the transfer counts as idle; `nil` while connecting or paused, or with no idle timeout.
    private(set) var idleDeadline: ContinuousClock.Instant?
    /// The reason the transfer was aborted from a callback, overriding curl's code.
    private(set) var abortReason: UpstreamError?
    /// The final status, once the head was delivered.
    private(set) var status: Int?

    init(channel: UpstreamTransferChannel, request: PreparedUpstreamRequest, easy: CurlEasyHandle) {
        self.channel = channel
        self.request = request
        self.easy = easy
    }

    deinit {
        if let headerList { curl_slist_free_all(headerList) }
        bodyStorage?.deallocate()
    }

    // MARK: Options

    /// Sets every option of the request on the (freshly reset) easy handle.
    func configure() throws(UpstreamError) {
        let options = request.request
        easy.errorBuffer[0] = 0
        try set(CURLOPT_URL, options.url)
        try set(CURLOPT_NOSIGNAL, 1)
        try set(CURLOPT_HTTP_VERSION, rosetta_http_version_1_1)
        try set(CURLOPT_PROTOCOLS_STR, "http,https")
        try set(CURLOPT_FOLLOWLOCATION, 0)
        try set(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1)
        try set(CURLOPT_PROXY, options.proxy ?? "")
        try set(CURLOPT_TCP_KEEPALIVE, 1)
        try set(CURLOPT_CONNECTTIMEOUT_MS, max(0, Milliseconds(options.connectTimeout).roundedUp))
        if let total = options.totalTimeout {
            try set(CURLOPT_TIMEOUT_MS, max(1, Milliseconds(total).roundedUp))
        }
        if let socket = options.unixSocketPath { try set(CURLOPT_UNIX_SOCKET_PATH, socket) }
        if let caFile = options.caFile { try set(CURLOPT_CAINFO, caFile) }

        for line in request.headerLines {
            headerList = line.withCString { curl_slist_append(headerList, $0) } ?? headerList
        }
        try check(rosetta_easy_setopt_slist(easy.pointer, CURLOPT_HTTPHEADER, headerList), "CURLOPT_HTTPHEADER")

        switch request.bodyMode {
        case .get:
            try set(CURLOPT_HTTPGET, 1)
        case .head:
            try set(CURLOPT_NOBODY, 1)
        case .custom(let method):
            try set(CURLOPT_CUSTOMREQUEST, method)
        case .fields(let customMethod):
            let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, options.body.count), alignment: 1)
            storage.copyBytes(from: options.body)
            bodyStorage = storage
            try check(rosetta_easy_setopt_off_t(easy.pointer, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(options.body.count)), "CURLOPT_POSTFIELDSIZE_LARGE")
            try check(rosetta_easy_setopt_pointer(easy.pointer, CURLOPT_POSTFIELDS, storage.baseAddress), "CURLOPT_POSTFIELDS")
            if let customMethod { try set(CURLOPT_CUSTOMREQUEST, customMethod) }
        }

        let this = Unmanaged.passUnretained(self).toOpaque()
        try check(rosetta_easy_setopt_pointer(easy.pointer, CURLOPT_PRIVATE, this), "CURLOPT_PRIVATE")
        try check(rosetta_easy_setopt_pointer(easy.pointer, CURLOPT_ERRORBUFFER, easy.errorBuffer), "CURLOPT_ERRORBUFFER")
        try check(rosetta_easy_setopt_write_callback(easy.pointer, CURLOPT_HEADERFUNCTION) { bytes, size, count, context in
            let transfer = Unmanaged<ActiveTransfer>.fromOpaque(context!).takeUnretainedValue()
            return transfer.receiveHeaderLine(UnsafeRawBufferPointer(start: bytes, count: size * count))
        }, "CURLOPT_HEADERFUNCTION")
        try check(rosetta_easy_setopt_pointer(easy.pointer, CURLOPT_HEADERDATA, this), "CURLOPT_HEADERDATA")
        try check(rosetta_easy_setopt_write_callback(easy.pointer, CURLOPT_WRITEFUNCTION) { bytes, size, count, context in
            let transfer = Unmanaged<ActiveTransfer>.fromOpaque(context!).takeUnretainedValue()
            return transfer.receiveBody(UnsafeRawBufferPointer(start: bytes, count: size * count))
        }, "CURLOPT_WRITEFUNCTION")
        try check(rosetta_easy_setopt_pointer(easy.pointer, CURLOPT_WRITEDATA, this), "CURLOPT_WRITEDATA")
        try check(rosetta_easy_setopt_prereq_callback(easy.pointer, CURLOPT_PREREQFUNCTION) { context, _, _, _, _ in
            Unmanaged<ActiveTransfer>.fromOpaque(context!).takeUnretainedValue().connectionReady()
            return CURL_PREREQFUNC_OK
        }, "CURLOPT_PREREQFUNCTION")
        try check(rosetta_easy_setopt_pointer(easy.pointer, CURLOPT_PREREQDATA, this), "CURLOPT_PREREQDATA")
        try check(rosetta_easy_setopt_xferinfo_callback(easy.pointer, CURLOPT_XFERINFOFUNCTION) { context, _, _, _, uploaded in
            Unmanaged<ActiveTransfer>.fromOpaque(context!).takeUnretainedValue().progress(uploaded: uploaded)
            return 0
        }, "CURLOPT_XFERINFOFUNCTION")
        try check(rosetta_easy_setopt_pointer(easy.pointer, CURLOPT_XFERINFODATA, this), "CURLOPT_XFERINFODATA")
        try set(CURLOPT_NOPROGRESS, 0)
    }

    private func set(_ option: CURLoption, _ value: Int) throws(UpstreamError) {
        try check(rosetta_easy_setopt_long(easy.pointer, option, value), "option \(option.rawValue)")
    }

    private func set(_ option: CURLoption, _ value: String) throws(UpstreamError) {
        try check(value.withCString { rosetta_easy_setopt_string(easy.pointer, option, $0) }, "option \(option.rawValue)")
    }

    private func check(_ code: CURLcode, _ what: @autoclosure () -> String) throws(UpstreamError) {
        guard code == CURLE_OK else {
            throw UpstreamError(
                .invalidRequest,
                message: "curl rejected \(what()) for \(request.targetDescription): \(String(cString: curl_easy_strerror(code)))",
                curlCode: Int32(code.rawValue)
            )
        }
    }

    // MARK: Callbacks (curl thread)

    /// Resets the idle clock: something was sent or received.
    func touch() {
        guard connected, !isPaused, request.request.idleTimeout > .zero else { return }
        idleDeadline = .now + request.request.idleTimeout
    }

    private func connectionReady() {
        connected = true
        touch()
    }

    private func progress(uploaded: curl_off_t) {
        if uploaded > uploadedBytes {
            uploadedBytes = uploaded
            touch()
        }
    }

    private func receiveHeaderLine(_ line: UnsafeRawBufferPointer) -> Int {
        touch()
        if case .headComplete(let head) = headParser.consume(line: line) {
            guard deliver(head) else { return 0 }
        }
        return line.count
    }

    private func receiveBody(_ bytes: UnsafeRawBufferPointer) -> Int {
        touch()
        if !headDelivered {
            deliverHeadIfMissing()
        }
        switch channel.chunkReceived(Array(bytes)) {
        case .accepted:
            return bytes.count
        case .pause:
            isPaused = true
            idleDeadline = nil
            return rosetta_writefunc_pause
        case .abort:
            abortReason = UpstreamError(.cancelled, message: "the reader of the response from \(request.targetDescription) went away")
            return 0
        }
    }

    /// Delivers a head built from curl's status when the header lines did not yield one.
    func deliverHeadIfMissing() {
        guard !headDelivered else { return }
        var code = 0
        _ = rosetta_easy_getinfo_long(easy.pointer, CURLINFO_RESPONSE_CODE, &code)
        _ = deliver(UpstreamResponseHead(status: code, headers: []))
    }

    private func deliver(_ head: UpstreamResponseHead) -> Bool {
        headDelivered = true
        status = head.status
        guard channel.headReceived(head) else {
            abortReason = UpstreamError(.cancelled, message: "the request to \(request.targetDescription) was cancelled")
            return false
        }
        return true
    }

    // MARK: Errors

    /// Turns curl's failure code into an error naming the upstream, with curl's explanation redacted.
    func error(for code: CURLcode) -> UpstreamError {
        let target = request.targetDescription
        let bufferText = String(cString: easy.errorBuffer)
        let detail = request.redacted(bufferText.isEmpty ? String(cString: curl_easy_strerror(code)) : bufferText)
        let curlCode = Int32(code.rawValue)
        switch code {
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_CONNECT:
            return UpstreamError(.connectFailed, message: "could not connect to \(target): \(detail)", curlCode: curlCode)
        case CURLE_OPERATION_TIMEDOUT where !connected:
            let timeout = Milliseconds(request.request.connectTimeout)
            return UpstreamError(.connectFailed, message: "connecting to \(target) timed out (connect timeout \(timeout)): \(detail)", curlCode: curlCode)
        case CURLE_OPERATION_TIMEDOUT:
            let total = request.request.totalTimeout.map { "\(Milliseconds($0))" } ?? "none"
            return UpstreamError(.timedOut, message: "no complete response from \(target) in time (total timeout \(total)): \(detail)", curlCode: curlCode)
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
             CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ENGINE_SETFAILED, CURLE_SSL_ENGINE_INITFAILED,
             CURLE_SSL_SHUTDOWN_FAILED, CURLE_SSL_CRL_BADFILE, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH,
             CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_CLIENTCERT:
            return UpstreamError(.tls, message: "TLS with \(target) failed: \(detail)", curlCode: curlCode)
        case CURLE_UNSUPPORTED_PROTOCOL, CURLE_URL_MALFORMAT, CURLE_NOT_BUILT_IN, CURLE_BAD_FUNCTION_ARGUMENT:
            return UpstreamError(.invalidRequest, message: "curl cannot send the request to \(target): \(detail)", curlCode: curlCode)
        default:
            if !connected {
                return UpstreamError(.connectFailed, message: "could not connect to \(target): \(detail)", curlCode: curlCode)
            }
            return UpstreamError(.transfer, message: "the exchange with \(target) failed: \(detail)", curlCode: curlCode)
        }
    }
}

/// A duration in whole milliseconds, for curl options and messages.
struct Milliseconds: CustomStringConvertible {
    /// The duration rounded up to the next whole millisecond.
    let roundedUp: Int

    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        let millisecondsFromFraction = (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        roundedUp = overflow ? Int(Int64.max) : Int(product + millisecondsFromFraction)
    }

    var description: String { "\(roundedUp) ms" }
}
