/// One server-sent event.
package struct SSEEvent: Sendable, Hashable {
    /// The `event:` field, when the event had one.
    package var event: String?
    /// The `data:` lines joined with `\n`.
    package var data: String

    /// Creates an event.
    package init(event: String? = nil, data: String) {
        self.event = event
        self.data = data
    }

    /// Whether this is OpenAI's end-of-stream marker, `data: [DONE]`.
    package var isDoneMarker: Bool { data == "[DONE]" }
}

/// An incremental parser of a `text/event-stream` body (WHATWG HTML, "Server-sent events").
///
/// Feed it byte chunks split anywhere (inside a line, a `\r\n` pair or a UTF-8 sequence) and it returns
/// every event completed so far. Lines end in `\n`, `\r\n` or `\r`; lines starting with `:` are comments;
/// an empty line dispatches the event; `id` and `retry` fields are ignored (the gateway never reconnects).
package struct SSEParser: Sendable {
    private var line: [UInt8] = []
    private var data: [UInt8] = []
    private var hasData = false
    private var eventName: String?
    private var pendingLineFeedAfterCarriageReturn = false
    private var atStreamStart = true

    /// Creates a parser at the start of a stream.
    package init() {}

    /// Consumes a chunk of the stream and returns the events it completed, in order.
    package mutating func feed(_ bytes: [UInt8]) -> [SSEEvent] {
        var events: [SSEEvent] = []
        bytes.withUnsafeBufferPointer { buffer in
            var index = 0
            let count = buffer.count
            if pendingLineFeedAfterCarriageReturn, count > 0 {
                pendingLineFeedAfterCarriageReturn = false
                if buffer[0] == 0x0A { index = 1 }
            }
            var lineStart = index
            while index < count {
                let byte = buffer[index]
                guard byte == 0x0A || byte == 0x0D else {
                    index += 1
                    continue
                }
                line.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[lineStart..<index]))
                processLine(into: &events)
                line.removeAll(keepingCapacity: true)
                if byte == 0x0D {
                    if index + 1 < count {
                        if buffer[index + 1] == 0x0A { index += 1 }
                    } else {
                        pendingLineFeedAfterCarriageReturn = true
                    }
                }
                index += 1
                lineStart = index
            }
            line.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[lineStart..<count]))
        }
        return events
    }

    /// Ends the stream: an unterminated last line and an undispatched last event are delivered too.
    ///
    /// The standard discards an event not followed by an empty line; servers that omit the final blank
    /// line are common enough that the gateway accepts their last event instead.
    package mutating func finish() -> [SSEEvent] {
        var events: [SSEEvent] = []
        if !line.isEmpty {
            processLine(into: &events)
            line.removeAll()
        }
        dispatch(into: &events)
        return events
    }

    private mutating func processLine(into events: inout [SSEEvent]) {
        if atStreamStart {
            atStreamStart = false
            if line.starts(with: [0xEF, 0xBB, 0xBF]) { line.removeFirst(3) }
        }
        if line.isEmpty {
            dispatch(into: &events)
            return
        }
        if line[0] == UInt8(ascii: ":") { return }
        let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.endIndex
        var valueStart = colon < line.endIndex ? colon + 1 : colon
        if valueStart < line.endIndex, line[valueStart] == 0x20 { valueStart += 1 }
        let name = line[..<colon]
        if name.elementsEqual("data".utf8) {
            if hasData { data.append(0x0A) }
            data.append(contentsOf: line[valueStart...])
            hasData = true
        } else if name.elementsEqual("event".utf8) {
            eventName = String(decoding: line[valueStart...], as: UTF8.self)
        }
    }

    private mutating func dispatch(into events: inout [SSEEvent]) {
        defer {
            data.removeAll(keepingCapacity: true)
            hasData = false
            eventName = nil
        }
        guard hasData else { return }
        events.append(SSEEvent(event: eventName, data: String(decoding: data, as: UTF8.self)))
    }
}
