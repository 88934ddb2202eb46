import Synchronization

/// How many upstream requests one tenant may have in flight, and how many more may wait for a slot.
package struct UpstreamConcurrencyLimits: Sendable, Equatable {
    /// The most upstream requests (streams included, for their whole duration) in flight at once.
    package var maxInFlight: Int
    /// The most requests waiting for a slot; one more is refused with 429.
    package var maxQueued: Int
    /// The `Retry-After` seconds sent with a refusal.
    package var retryAfterSeconds: Int

    /// The defaults: 16 in flight, 64 waiting, retry after 1 s.
    package init(maxInFlight: Int = 16, maxQueued: Int = 64, retryAfterSeconds: Int = 1) {
        self.maxInFlight = maxInFlight
        self.maxQueued = maxQueued
        self.retryAfterSeconds = retryAfterSeconds
    }
}

/// The admission rules of one tenant's upstream slots, without I/O: admit, queue in arrival order, or refuse.
///
/// A released slot passes straight to the oldest waiter, so the number in flight never exceeds the cap and
/// waiters are served first come, first served. Callers name each request by an id they choose.
package struct UpstreamAdmissionStateMachine: Sendable {
    /// What happens to a request that asks for a slot.
    package enum Admission: Sendable, Equatable {
        /// A slot is free: go ahead.
        case admitted
        /// Every slot is taken: wait until `release()` hands this request one.
        case queued
        /// Every slot and every place in the queue is taken: refuse.
        case refused
    }

    /// What happens to a waiter that gives up.
    package enum Withdrawal: Sendable, Equatable {
        /// It was waiting and has left the queue.
        case leftQueue
        /// It is not waiting (already admitted, or unknown): nothing changed.
        case notWaiting
    }

    /// The limits applied.
    package let limits: UpstreamConcurrencyLimits
    /// Requests holding a slot.
    package private(set) var inFlight = 0
    /// Waiting request ids, oldest first.
    package private(set) var queue: [Int] = []

    /// Creates an empty state machine.
    package init(limits: UpstreamConcurrencyLimits) {
        self.limits = limits
    }

    /// A request asks for a slot.
    package mutating func acquire(id: Int) -> Admission {
        if inFlight < limits.maxInFlight, queue.isEmpty {
            inFlight += 1
            return .admitted
        }
        guard queue.count < limits.maxQueued else { return .refused }
        queue.append(id)
        return .queued
    }

    /// A request gives its slot back; returns the waiter that now holds it, if any.
    package mutating func release() -> Int? {
        precondition(inFlight > 0, "release() without a slot held")
        guard !queue.isEmpty else {
            inFlight -= 1
            return nil
        }
        return queue.removeFirst()
    }

    /// A waiting request gives up (its client went away).
    package mutating func withdraw(id: Int) -> Withdrawal {
        guard let index = queue.firstIndex(of: id) else { return .notWaiting }
        queue.remove(at: index)
        return .leftQueue
    }
}

/// One tenant's upstream slots, shared by all of its requests: waits in line, refuses when the line is full.
///
/// A waiter whose task is cancelled (its client disconnected) leaves the queue at once.
package final class UpstreamAdmission: Sendable {
    /// Where one request's ask for a slot stands.
    private enum Ticket {
        /// Asked, not yet decided.
        case pending
        /// Cancelled before it was decided.
        case cancelled
        /// Waiting in the queue.
        case waiting(CheckedContinuation<Void, any Error>)
    }

    private struct State {
        var machine: UpstreamAdmissionStateMachine
        /// Undecided and waiting requests; an admitted or refused request has no ticket.
        var tickets: [Int: Ticket] = [:]
        var nextID = 0
        var refusedTotal = 0
    }

    private let state: Mutex<State>
    /// The limits applied.
    package let limits: UpstreamConcurrencyLimits

    /// Creates the slots of one tenant.
    package init(limits: UpstreamConcurrencyLimits) {
        self.limits = limits
        self.state = Mutex(State(machine: UpstreamAdmissionStateMachine(limits: limits)))
    }

    /// Requests in flight, requests waiting, and requests refused so far.
    package var snapshot: (inFlight: Int, queued: Int, refused: Int) {
        state.withLock { ($0.machine.inFlight, $0.machine.queue.count, $0.refusedTotal) }
    }

    /// Runs `body` holding one slot, waiting for a slot first; when the line is full it throws a 429
    /// `tenant_concurrency_limit` error with `Retry-After`, and when the task is cancelled while waiting a
    /// `client_disconnected` error (nobody is left to read it).
    package func withSlot<Result>(_ body: () async throws(GatewayError) -> Result) async throws(GatewayError) -> Result {
        do {
            try await acquire()
        } catch let error as GatewayError {
            throw error
        } catch {
            throw GatewayError(.invalidRequest, code: "client_disconnected", message: "The client went away while its request waited for an upstream slot.", status: 499, cause: error)
        }
        defer { release() }
        return try await body()
    }

    private func acquire() async throws {
        let id = state.withLock { state in
            defer { state.nextID += 1 }
            state.tickets[state.nextID] = .pending
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome: Result<Void, any Error>? = state.withLock { state in
                    if case .cancelled? = state.tickets[id] {
                        state.tickets[id] = nil
                        return .failure(CancellationError())
                    }
                    switch state.machine.acquire(id: id) {
                    case .admitted:
                        state.tickets[id] = nil
                        return .success(())
                    case .refused:
                        state.tickets[id] = nil
                        state.refusedTotal += 1
                        return .failure(refusal(queued: state.machine.queue.count))
                    case .queued:
                        state.tickets[id] = .waiting(continuation)
                        return nil
                    }
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let waiter: CheckedContinuation<Void, any Error>? = state.withLock { state in
                switch state.tickets[id] {
                case .pending?:
                    state.tickets[id] = .cancelled
                    return nil
                case .waiting(let waiter)?:
                    state.tickets[id] = nil
                    _ = state.machine.withdraw(id: id)
                    return waiter
                case .cancelled?, nil:
                    return nil
                }
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    private func release() {
        let next: CheckedContinuation<Void, any Error>? = state.withLock { state in
            guard let id = state.machine.release() else { return nil }
            guard case .waiting(let waiter)? = state.tickets.removeValue(forKey: id) else { return nil }
            return waiter
        }
        next?.resume()
    }

    private func refusal(queued: Int) -> GatewayError {
        GatewayError(
            .rateLimited, code: "tenant_concurrency_limit",
            message: "Too many requests in flight for this user: \(limits.maxInFlight) upstream requests are running and \(queued) are waiting (the limit). Retry shortly, or send fewer requests at once.",
            retryAfter: limits.retryAfterSeconds)
    }
}
