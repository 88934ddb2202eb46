import NIOCore

/// The life of one upstream exchange between the curl thread and the Swift consumer, without any I/O.
///
/// The curl thread reports the head, body chunks and the end; the consumer waits for the head, then
/// pulls chunks. Each event returns the action its caller must take outside the lock: resume a waiter,
/// pause or resume receiving, or abort the transfer. Waiters are generic so tests can use plain values.
///
/// Back-pressure: chunks nobody has pulled are buffered up to `highWaterBytes`; beyond that, a chunk is
/// refused (`pause`) and curl keeps it until the consumer has drained the buffer to `lowWaterBytes`.
package struct UpstreamTransferStateMachine<HeadWaiter, ChunkWaiter> {
    /// What a consumer waiting for the head must do.
    package enum WaitForHeadAction {
        /// The waiter is stored; send the request now.
        case suspended
        /// Resume the waiter at once with this result (the exchange already failed or was cancelled).
        case resume(HeadWaiter, Result<UpstreamResponseHead, UpstreamError>)
    }

    /// What the curl thread must do with a received head.
    package enum HeadReceivedAction {
        /// Resume the waiting consumer with the head.
        case resume(HeadWaiter, UpstreamResponseHead)
        /// Nobody wants the response any more: abort the transfer.
        case abort
    }

    /// What the curl thread must do with a received body chunk.
    package enum ChunkReceivedAction {
        /// Hand the chunk straight to the waiting consumer.
        case deliver(ChunkWaiter, [UInt8])
        /// The chunk was buffered; keep receiving.
        case buffered
        /// The buffer is full: refuse the chunk and pause receiving until told to resume.
        case pause
        /// Nobody wants the body any more: abort the transfer.
        case abort
    }

    /// What a consumer pulling the next chunk without waiting gets.
    package enum TakeResult {
        /// A chunk; when `resumeReceiving` is set, receiving was paused and must be resumed.
        case chunk([UInt8], resumeReceiving: Bool)
        /// The body ended cleanly.
        case end
        /// The exchange failed.
        case failure(UpstreamError)
        /// Nothing is available yet: wait.
        case empty
    }

    /// What a consumer that offered a chunk waiter must do.
    package enum WaitForChunkAction {
        /// The waiter is stored; it will be resumed by a later event. Resume receiving first if set.
        case suspended(resumeReceiving: Bool)
        /// Resume the waiter at once with this result; resume receiving first if set.
        case resume(ChunkWaiter, Result<[UInt8]?, UpstreamError>, resumeReceiving: Bool)
    }

    /// What must happen when the transfer ended.
    package enum CompletionAction {
        /// Nothing: the result is stored for the consumer, or nobody is interested.
        case none
        /// Fail the consumer still waiting for the head.
        case resumeHead(HeadWaiter, UpstreamError)
        /// Resume the consumer waiting for a chunk with the end of the body.
        case resumeChunk(ChunkWaiter, Result<[UInt8]?, UpstreamError>)
    }

    /// What must happen when the consumer went away (cancelled, or dropped the body).
    package struct CancelAction {
        /// A waiting head consumer to fail with the cancellation, if any.
        package var headWaiter: HeadWaiter?
        /// A waiting chunk consumer to fail with the cancellation, if any.
        package var chunkWaiter: ChunkWaiter?
        /// Whether the transfer was sent and is still running, so it must be aborted.
        package var abortTransfer: Bool
    }

    private struct Stream {
        var chunks = CircularBuffer<[UInt8]>()
        var bufferedBytes = 0
        var waiter: ChunkWaiter?
        var end: Result<Void, UpstreamError>?
        var receivingPaused = false
    }

    private enum State {
        /// Created; no consumer waits yet and nothing was sent.
        case idle
        /// The request was sent (or is about to be); the consumer waits for the head.
        case awaitingHead(HeadWaiter)
        /// The exchange failed, or was cancelled, before a consumer waited for the head.
        case failedBeforeHead(UpstreamError)
        /// The head was delivered; the body streams.
        case streaming(Stream)
        /// The consumer saw the end, or went away.
        case finished
    }

    private var state: State = .idle
    private var transferEnded = false
    private var bodyClaimed = false
    private let highWaterBytes: Int
    private let lowWaterBytes: Int

    /// Creates the machine with the back-pressure thresholds for unread body bytes.
    package init(highWaterBytes: Int, lowWaterBytes: Int) {
        precondition(lowWaterBytes <= highWaterBytes, "the low-water mark must not exceed the high-water mark")
        self.highWaterBytes = highWaterBytes
        self.lowWaterBytes = lowWaterBytes
    }

    /// Whether the curl thread should still start the transfer (the consumer has not gone away).
    package var wantsTransfer: Bool {
        if case .awaitingHead = state { return true }
        return false
    }

    /// Whether receiving is currently paused for back-pressure.
    package var isReceivingPaused: Bool {
        if case .streaming(let stream) = state { return stream.receivingPaused }
        return false
    }

    /// The body bytes buffered and not yet pulled by the consumer.
    package var bufferedBytes: Int {
        if case .streaming(let stream) = state { return stream.bufferedBytes }
        return 0
    }

    /// The consumer waits for the response head.
    package mutating func waitForHead(_ waiter: HeadWaiter) -> WaitForHeadAction {
        switch state {
        case .idle:
            state = .awaitingHead(waiter)
            return .suspended
        case .failedBeforeHead(let error):
            state = .finished
            return .resume(waiter, .failure(error))
        case .awaitingHead, .streaming, .finished:
            preconditionFailure("waitForHead called twice")
        }
    }

    /// The curl thread received the final response head.
    package mutating func headReceived(_ head: UpstreamResponseHead) -> HeadReceivedAction {
        switch state {
        case .awaitingHead(let waiter):
            state = .streaming(Stream())
            return .resume(waiter, head)
        case .idle, .failedBeforeHead, .streaming, .finished:
            return .abort
        }
    }

    /// The curl thread received a body chunk.
    package mutating func chunkReceived(_ chunk: [UInt8]) -> ChunkReceivedAction {
        guard case .streaming(var stream) = state else { return .abort }
        state = .idle  // Release the state's reference so mutating the payload does not copy its chunk queue.
        if let waiter = stream.waiter {
            stream.waiter = nil
            state = .streaming(stream)
            return .deliver(waiter, chunk)
        }
        if stream.bufferedBytes >= highWaterBytes {
            stream.receivingPaused = true
            state = .streaming(stream)
            return .pause
        }
        stream.bufferedBytes += chunk.count
        stream.chunks.append(chunk)
        state = .streaming(stream)
        return .buffered
    }

    /// The consumer pulls the next chunk without waiting.
    package mutating func takeNext() -> TakeResult {
        switch state {
        case .streaming(var stream):
            state = .idle  // Release the state's reference so mutating the payload does not copy its chunk queue.
            if let chunk = stream.chunks.popFirst() {
                stream.bufferedBytes -= chunk.count
                let resume = stream.receivingPaused && stream.bufferedBytes <= lowWaterBytes
                if resume { stream.receivingPaused = false }
                state = .streaming(stream)
                return .chunk(chunk, resumeReceiving: resume)
            }
            switch stream.end {
            case .some(.success):
                state = .finished
                return .end
            case .some(.failure(let error)):
                state = .finished
                return .failure(error)
            case .none:
                state = .streaming(stream)
                return .empty
            }
        case .finished:
            return .end
        case .idle, .awaitingHead, .failedBeforeHead:
            preconditionFailure("the body is read before the head arrived")
        }
    }

    /// The consumer found nothing available and offers a waiter.
    package mutating func waitForChunk(_ waiter: ChunkWaiter) -> WaitForChunkAction {
        switch takeNext() {
        case .chunk(let chunk, let resumeReceiving):
            // A chunk arrived between the consumer's attempt and its offer: the waiter takes it at once.
            return .resume(waiter, .success(chunk), resumeReceiving: resumeReceiving)
        case .end:
            return .resume(waiter, .success(nil), resumeReceiving: false)
        case .failure(let error):
            return .resume(waiter, .failure(error), resumeReceiving: false)
        case .empty:
            guard case .streaming(var stream) = state else { preconditionFailure("nothing to take outside streaming") }
            state = .idle  // Release the state's reference so mutating the payload does not copy its chunk queue.
            stream.waiter = waiter
            let resume = stream.receivingPaused
            stream.receivingPaused = false
            state = .streaming(stream)
            return .suspended(resumeReceiving: resume)
        }
    }

    /// The curl thread reports that the transfer ended, cleanly or not.
    package mutating func transferCompleted(_ result: Result<Void, UpstreamError>) -> CompletionAction {
        transferEnded = true
        switch state {
        case .idle:
            if case .failure(let error) = result { state = .failedBeforeHead(error) }
            return .none
        case .awaitingHead(let waiter):
            state = .finished
            switch result {
            case .failure(let error):
                return .resumeHead(waiter, error)
            case .success:
                return .resumeHead(
                    waiter,
                    UpstreamError(.transfer, message: "the upstream ended the exchange without a response head")
                )
            }
        case .streaming(var stream):
            state = .idle  // Release the state's reference so mutating the payload does not copy its chunk queue.
            if let waiter = stream.waiter {
                state = .finished
                return .resumeChunk(waiter, result.map { nil })
            }
            stream.end = result
            stream.receivingPaused = false
            state = .streaming(stream)
            return .none
        case .failedBeforeHead, .finished:
            return .none
        }
    }

    /// The consumer went away: its task was cancelled while waiting, or it dropped the body.
    package mutating func consumerCancelled(_ error: UpstreamError) -> CancelAction {
        switch state {
        case .idle:
            state = .failedBeforeHead(error)
            return CancelAction(headWaiter: nil, chunkWaiter: nil, abortTransfer: false)
        case .awaitingHead(let waiter):
            state = .finished
            return CancelAction(headWaiter: waiter, chunkWaiter: nil, abortTransfer: !transferEnded)
        case .streaming(let stream):
            state = .finished
            return CancelAction(headWaiter: nil, chunkWaiter: stream.waiter, abortTransfer: stream.end == nil)
        case .failedBeforeHead, .finished:
            return CancelAction(headWaiter: nil, chunkWaiter: nil, abortTransfer: false)
        }
    }

    /// Claims the body for its single consumer; false when it was claimed before.
    package mutating func claimBody() -> Bool {
        defer { bodyClaimed = true }
        return !bodyClaimed
    }

    /// Whether a consumer has claimed the body.
    package var isBodyClaimed: Bool { bodyClaimed }
}
