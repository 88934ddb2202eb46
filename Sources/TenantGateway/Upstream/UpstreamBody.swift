/// The body of an upstream response: byte chunks in arrival order, readable once.
///
/// Chunks are delivered as curl receives them. Leaving the loop early, cancelling the reading task,
/// or dropping the body without reading it aborts the transfer and closes the upstream connection.
/// A transfer that breaks off throws an `UpstreamError`; a clean end finishes the sequence.
package struct UpstreamBody: AsyncSequence, Sendable {
    /// A chunk of body bytes.
    package typealias Element = [UInt8]
    /// The error a broken-off body throws.
    package typealias Failure = UpstreamError

    private let source: UpstreamBodySource

    init(channel: UpstreamTransferChannel) {
        self.source = UpstreamBodySource(channel: channel)
    }

    /// The upstream's `host:port`, for messages.
    package var targetDescription: String { source.channel.targetDescription }

    /// Makes the body's one iterator; a second iterator throws at once.
    package func makeAsyncIterator() -> Iterator {
        let channel = source.channel
        return Iterator(consumer: UpstreamBodyConsumer(channel: channel, isOwner: channel.claimBody()))
    }

    /// Reads the body's chunks; dropping it before the end aborts the transfer.
    package struct Iterator: AsyncIteratorProtocol {
        /// A chunk of body bytes.
        package typealias Element = [UInt8]
        /// The error a broken-off body throws.
        package typealias Failure = UpstreamError

        private let consumer: UpstreamBodyConsumer

        fileprivate init(consumer: UpstreamBodyConsumer) {
            self.consumer = consumer
        }

        /// The next chunk, or `nil` after the last one.
        package mutating func next() async throws(UpstreamError) -> [UInt8]? {
            try await next(isolation: nil)
        }

        /// The next chunk, or `nil` after the last one, staying on the caller's actor.
        package mutating func next(isolation actor: isolated (any Actor)?) async throws(UpstreamError) -> [UInt8]? {
            guard consumer.isOwner else {
                throw UpstreamError(
                    .invalidRequest,
                    message: "the response body from \(consumer.channel.targetDescription) can be read only once"
                )
            }
            return try await consumer.channel.nextChunk(isolation: actor).get()
        }
    }
}

/// Lives as long as any copy of the body: aborts an unread transfer when the last copy goes.
fileprivate final class UpstreamBodySource: Sendable {
    let channel: UpstreamTransferChannel

    init(channel: UpstreamTransferChannel) {
        self.channel = channel
    }

    deinit {
        channel.bodyReleased()
    }
}

/// Lives as long as the iterator: aborts a transfer whose reader stopped before the end.
fileprivate final class UpstreamBodyConsumer: Sendable {
    let channel: UpstreamTransferChannel
    let isOwner: Bool

    init(channel: UpstreamTransferChannel, isOwner: Bool) {
        self.channel = channel
        self.isOwner = isOwner
    }

    deinit {
        if isOwner {
            channel.consumerLeft(
                UpstreamError(.cancelled, message: "the reader of the response from \(channel.targetDescription) stopped")
            )
        }
    }
}
