import Synchronization

/// The meeting point of one exchange's curl-thread side and its Swift consumer.
///
/// Wraps `UpstreamTransferStateMachine` in a lock, resumes continuations outside it and turns the
/// machine's pause, resume and abort decisions into commands for the curl thread.
final class UpstreamTransferChannel: Sendable {
    typealias HeadWaiter = UnsafeContinuation<Result<UpstreamResponseHead, UpstreamError>, Never>
    typealias ChunkWaiter = UnsafeContinuation<Result<[UInt8]?, UpstreamError>, Never>
    typealias Machine = UpstreamTransferStateMachine<HeadWaiter, ChunkWaiter>

    /// Unread body bytes beyond which receiving pauses.
    static let highWaterBytes = 1 << 20
    /// Unread body bytes at or below which a paused transfer resumes.
    static let lowWaterBytes = 256 << 10

    private let machine = Mutex(Machine(highWaterBytes: highWaterBytes, lowWaterBytes: lowWaterBytes))
    private let loop: CurlMultiLoop
    /// The upstream's `host:port` (and Unix socket), for messages.
    let targetDescription: String

    init(loop: CurlMultiLoop, targetDescription: String) {
        self.loop = loop
        self.targetDescription = targetDescription
    }

    // MARK: Consumer side

    /// Waits for the response head; `send` is called once the waiter is stored, to hand the request to curl.
    func responseHead(
        isolation: isolated (any Actor)? = #isolation,
        send: () -> Void
    ) async -> Result<UpstreamResponseHead, UpstreamError> {
        await withTaskCancellationHandler {
            await withUnsafeContinuation(isolation: isolation) { (waiter: HeadWaiter) in
                switch machine.withLock({ $0.waitForHead(waiter) }) {
                case .suspended:
                    send()
                case .resume(let waiter, let result):
                    waiter.resume(returning: result)
                }
            }
        } onCancel: {
            consumerLeft(UpstreamError(.cancelled, message: "the request to \(targetDescription) was cancelled"))
        }
    }

    /// Pulls the next body chunk, waiting for it when none is buffered; `nil` at the end of the body.
    func nextChunk(isolation: isolated (any Actor)? = #isolation) async -> Result<[UInt8]?, UpstreamError> {
        switch machine.withLock({ $0.takeNext() }) {
        case .chunk(let chunk, let resumeReceiving):
            if resumeReceiving { loop.submit(.resumeReceiving(self)) }
            return .success(chunk)
        case .end:
            return .success(nil)
        case .failure(let error):
            return .failure(error)
        case .empty:
            break
        }
        return await withTaskCancellationHandler {
            await withUnsafeContinuation(isolation: isolation) { (waiter: ChunkWaiter) in
                switch machine.withLock({ $0.waitForChunk(waiter) }) {
                case .suspended(let resumeReceiving):
                    if resumeReceiving { loop.submit(.resumeReceiving(self)) }
                case .resume(let waiter, let result, let resumeReceiving):
                    if resumeReceiving { loop.submit(.resumeReceiving(self)) }
                    waiter.resume(returning: result)
                }
            }
        } onCancel: {
            consumerLeft(UpstreamError(.cancelled, message: "reading the response from \(targetDescription) was cancelled"))
        }
    }

    /// Claims the body for its one consumer; false when it was claimed before.
    func claimBody() -> Bool {
        machine.withLock { $0.claimBody() }
    }

    /// The body value was released; aborts the transfer when nobody ever started reading it.
    func bodyReleased() {
        guard !machine.withLock({ $0.isBodyClaimed }) else { return }
        consumerLeft(UpstreamError(.cancelled, message: "the response body from \(targetDescription) was dropped unread"))
    }

    /// The consumer went away; fails whoever waits and aborts a running transfer.
    func consumerLeft(_ error: UpstreamError) {
        let action = machine.withLock { $0.consumerCancelled(error) }
        if action.abortTransfer { loop.submit(.cancel(self)) }
        action.headWaiter?.resume(returning: .failure(error))
        action.chunkWaiter?.resume(returning: .failure(error))
    }

    // MARK: curl-thread side

    /// Whether the transfer should still be started.
    var wantsTransfer: Bool {
        machine.withLock { $0.wantsTransfer }
    }

    /// Delivers the final response head; false when nobody wants it (abort the transfer).
    func headReceived(_ head: UpstreamResponseHead) -> Bool {
        switch machine.withLock({ $0.headReceived(head) }) {
        case .resume(let waiter, let head):
            waiter.resume(returning: .success(head))
            return true
        case .abort:
            return false
        }
    }

    /// Delivers a body chunk; the result tells the curl thread to go on, pause or abort.
    func chunkReceived(_ chunk: [UInt8]) -> ChunkDisposition {
        switch machine.withLock({ $0.chunkReceived(chunk) }) {
        case .deliver(let waiter, let chunk):
            waiter.resume(returning: .success(chunk))
            return .accepted
        case .buffered:
            return .accepted
        case .pause:
            return .pause
        case .abort:
            return .abort
        }
    }

    /// What the curl thread does with a chunk it offered.
    enum ChunkDisposition {
        /// The chunk was taken.
        case accepted
        /// The chunk was refused: pause receiving; curl offers it again after resuming.
        case pause
        /// Nobody wants the body: abort.
        case abort
    }

    /// Reports the end of the transfer.
    func transferCompleted(_ result: Result<Void, UpstreamError>) {
        switch machine.withLock({ $0.transferCompleted(result) }) {
        case .none:
            break
        case .resumeHead(let waiter, let error):
            waiter.resume(returning: .failure(error))
        case .resumeChunk(let waiter, let result):
            waiter.resume(returning: result)
        }
    }
}
