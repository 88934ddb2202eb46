import TenantGateway
import Testing

/// The upstream client's protocol logic without I/O: the head parser and the transfer state machine.
@Suite("UpstreamTransferStateMachine")
struct UpstreamTransferStateMachineTests {
    /// Waiters are plain values here: heads are waited on by numbers, chunks by names.
    typealias Machine = UpstreamTransferStateMachine<Int, String>

    private let head = UpstreamResponseHead(status: 200, headers: [UpstreamHeaderField(name: "content-type", value: "text/event-stream")])
    private let failure = UpstreamError(.transfer, message: "connection reset")
    private let cancelled = UpstreamError(.cancelled, message: "gone")

    private func parse(_ lines: [String]) -> [UpstreamResponseHead] {
        var parser = UpstreamResponseHeadParser()
        return lines.compactMap { line in
            if case .headComplete(let head) = parser.consume(line: Array(line.utf8)) { return head }
            return nil
        }
    }

    @Test("the parser yields only the final head, skipping 100 and 103 and ignoring trailers")
    func parserSkipsInterimHeads() {
        let heads = parse([
            "HTTP/1.1 100 Continue\r\n", "\r\n",
            "HTTP/1.1 103 Early Hints\r\n", "Link: </a>\r\n", "\r\n",
            "HTTP/1.1 429 Too Many Requests\r\n", "Retry-After:  7 \r\n", "X-Multi: a\r\n", "\r\n",
            "X-Trailer: late\r\n", "\r\n",
        ])
        #expect(heads == [UpstreamResponseHead(status: 429, headers: [
            UpstreamHeaderField(name: "Retry-After", value: "7"),
            UpstreamHeaderField(name: "X-Multi", value: "a"),
        ])])
    }

    @Test("the parser joins continuation lines and reads HTTP/2 status lines")
    func parserFoldsContinuations() {
        let heads = parse(["HTTP/2 201\r\n", "x-long: first\r\n", "\t second\r\n", "\r\n"])
        #expect(heads == [UpstreamResponseHead(status: 201, headers: [UpstreamHeaderField(name: "x-long", value: "first second")])])
    }

    @Test("chunks go straight to a waiting consumer, then the end")
    func directDelivery() {
        var machine = Machine(highWaterBytes: 100, lowWaterBytes: 10)
        guard case .suspended = machine.waitForHead(1) else { Issue.record("expected to suspend"); return }
        #expect(machine.wantsTransfer)
        guard case .resume(1, let delivered) = machine.headReceived(head) else { Issue.record("expected the head"); return }
        #expect(delivered == head)
        guard case .empty = machine.takeNext() else { Issue.record("nothing should be buffered"); return }
        guard case .suspended(resumeReceiving: false) = machine.waitForChunk("a") else { Issue.record("expected to suspend"); return }
        guard case .deliver("a", [1, 2]) = machine.chunkReceived([1, 2]) else { Issue.record("expected direct delivery"); return }
        guard case .suspended = machine.waitForChunk("b") else { Issue.record("expected to suspend"); return }
        guard case .resumeChunk("b", .success(nil)) = machine.transferCompleted(.success(())) else {
            Issue.record("expected the end for the waiter"); return
        }
        guard case .end = machine.takeNext() else { Issue.record("expected the end again"); return }
    }

    @Test("buffered chunks come out in order before the end or the failure")
    func bufferedThenFailure() {
        var machine = Machine(highWaterBytes: 100, lowWaterBytes: 10)
        _ = machine.waitForHead(1)
        _ = machine.headReceived(head)
        guard case .buffered = machine.chunkReceived([1]), case .buffered = machine.chunkReceived([2, 3]) else {
            Issue.record("expected buffering"); return
        }
        #expect(machine.bufferedBytes == 3)
        guard case .none = machine.transferCompleted(.failure(failure)) else { Issue.record("nobody waits"); return }
        guard case .chunk([1], false) = machine.takeNext(), case .chunk([2, 3], false) = machine.takeNext() else {
            Issue.record("expected the chunks in order"); return
        }
        guard case .resume("w", .failure(let error), false) = machine.waitForChunk("w") else { Issue.record("expected the failure"); return }
        #expect(error == failure)
    }

    @Test("receiving pauses at the high-water mark and resumes once drained to the low-water mark")
    func backPressure() {
        var machine = Machine(highWaterBytes: 4, lowWaterBytes: 2)
        _ = machine.waitForHead(1)
        _ = machine.headReceived(head)
        guard case .buffered = machine.chunkReceived([1, 1]), case .buffered = machine.chunkReceived([2, 2]) else {
            Issue.record("expected buffering below the mark"); return
        }
        guard case .pause = machine.chunkReceived([3, 3]) else { Issue.record("expected a pause at the mark"); return }
        #expect(machine.isReceivingPaused)
        #expect(machine.bufferedBytes == 4, "a refused chunk is not buffered")
        guard case .chunk([1, 1], resumeReceiving: true) = machine.takeNext() else {
            Issue.record("expected a resume at the low-water mark"); return
        }
        #expect(!machine.isReceivingPaused)
        guard case .buffered = machine.chunkReceived([3, 3]) else { Issue.record("the refused chunk is offered again"); return }
    }

    @Test("a consumer waiting on an empty paused buffer resumes receiving")
    func zeroHighWaterResumesOnWait() {
        var machine = Machine(highWaterBytes: 0, lowWaterBytes: 0)
        _ = machine.waitForHead(1)
        _ = machine.headReceived(head)
        guard case .pause = machine.chunkReceived([9]) else { Issue.record("expected a pause"); return }
        guard case .suspended(resumeReceiving: true) = machine.waitForChunk("w") else { Issue.record("expected a resume"); return }
        guard case .deliver("w", [9]) = machine.chunkReceived([9]) else { Issue.record("expected delivery"); return }
    }

    @Test("cancelling while the head is awaited fails the waiter and aborts the transfer")
    func cancelAwaitingHead() {
        var machine = Machine(highWaterBytes: 100, lowWaterBytes: 10)
        _ = machine.waitForHead(7)
        let action = machine.consumerCancelled(cancelled)
        #expect(action.headWaiter == 7)
        #expect(action.abortTransfer)
        #expect(!machine.wantsTransfer)
        guard case .abort = machine.headReceived(head) else { Issue.record("a late head is unwanted"); return }
    }

    @Test("cancelling before waiting means the transfer never starts and the wait fails at once")
    func cancelBeforeWaiting() {
        var machine = Machine(highWaterBytes: 100, lowWaterBytes: 10)
        let action = machine.consumerCancelled(cancelled)
        #expect(action.headWaiter == nil && !action.abortTransfer)
        guard case .resume(3, .failure(let error)) = machine.waitForHead(3) else { Issue.record("expected an immediate failure"); return }
        #expect(error == cancelled)
        #expect(!machine.wantsTransfer)
    }

    @Test("a consumer leaving mid-body aborts a running transfer but not a finished one")
    func consumerLeavesMidBody() {
        var running = Machine(highWaterBytes: 100, lowWaterBytes: 10)
        _ = running.waitForHead(1)
        _ = running.headReceived(head)
        _ = running.waitForChunk("reader")
        let action = running.consumerCancelled(cancelled)
        #expect(action.chunkWaiter == "reader" && action.abortTransfer)
        guard case .abort = running.chunkReceived([1]) else { Issue.record("chunks after leaving abort"); return }

        var finished = Machine(highWaterBytes: 100, lowWaterBytes: 10)
        _ = finished.waitForHead(1)
        _ = finished.headReceived(head)
        _ = finished.chunkReceived([1])
        _ = finished.transferCompleted(.success(()))
        #expect(!finished.consumerCancelled(cancelled).abortTransfer)
    }

    @Test("a transfer that ends without a head fails the waiter")
    func endWithoutHead() {
        var machine = Machine(highWaterBytes: 100, lowWaterBytes: 10)
        _ = machine.waitForHead(1)
        guard case .resumeHead(1, let error) = machine.transferCompleted(.success(())) else { Issue.record("expected a failure"); return }
        #expect(error.code == .transfer)
    }

    @Test("the body can be claimed once")
    func claimOnce() {
        var machine = Machine(highWaterBytes: 100, lowWaterBytes: 10)
        let first = machine.claimBody()
        let second = machine.claimBody()
        #expect(first && !second)
    }
}
