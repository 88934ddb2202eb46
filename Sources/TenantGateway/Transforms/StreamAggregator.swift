/// Assembles an upstream's SSE stream into one whole response, for a client that did not ask for a stream
/// when a `force_stream` rule made the upstream call stream.
///
/// Feed it the upstream body as it arrives and call `finish()` at end-of-file: it returns the response or
/// throws the stream's error (an upstream error event, a protocol violation, or a stream cut short).
package struct StreamAggregator: Sendable {
    private var parser = SSEParser()
    private var decoder: StreamDecoderBox
    private var events: [StreamEvent] = []
    private var response = ChatResponse(id: "", model: "", content: [], finishReason: nil)
    private var toolCallPositions: [Int: Int] = [:]
    private var completed = false
    private var failure: GatewayError?

    /// Creates an aggregator for an upstream dialect; `model` is reported as the response's model.
    package init(upstream: Dialect, model: String) {
        decoder = StreamDecoderBox(dialect: upstream)
        response.model = model
    }

    /// Consumes a chunk of the upstream body.
    package mutating func feed(_ bytes: [UInt8]) {
        guard !completed, failure == nil else { return }
        for event in parser.feed(bytes) { decode(event) }
    }

    /// The whole response, once the upstream completed its stream.
    package mutating func finish() throws(GatewayError) -> ChatResponse {
        if !completed, failure == nil {
            // An event cut off mid-JSON is what a broken connection leaves: reported as truncation below.
            for event in parser.finish() where event.isDoneMarker || (try? JSON.parse(event.data.utf8)) != nil { decode(event) }
        }
        if let failure { throw failure }
        guard completed else { throw UpstreamProblem.truncatedStream }
        return response
    }

    private mutating func decode(_ event: SSEEvent) {
        guard !completed, failure == nil else { return }
        decoder.decode(event, into: &events)
        for decoded in events { apply(decoded) }
        events.removeAll(keepingCapacity: true)
    }

    private mutating func apply(_ event: StreamEvent) {
        guard !completed, failure == nil else { return }
        switch event {
        case .start(let id, let usage):
            response.id = id
            if let usage { response.usage = usage }
        case .textDelta(let text):
            if case .text(let earlier)? = response.content.last {
                response.content[response.content.count - 1] = .text(earlier + text)
            } else {
                response.content.append(.text(text))
            }
        case .reasoningDelta(let text):
            if case .reasoning(var earlier)? = response.content.last, earlier.signature == nil {
                earlier.text += text
                response.content[response.content.count - 1] = .reasoning(earlier)
            } else {
                response.content.append(.reasoning(Reasoning(text: text)))
            }
        case .reasoningSignature(let signature):
            if case .reasoning(var earlier)? = response.content.last {
                earlier.signature = signature
                response.content[response.content.count - 1] = .reasoning(earlier)
            } else {
                response.content.append(.reasoning(Reasoning(text: "", signature: signature)))
            }
        case .redactedReasoning(let data):
            response.content.append(.redactedReasoning(data: data))
        case .toolCallStart(let index, let id, let name):
            toolCallPositions[index] = response.content.count
            response.content.append(.toolCall(ToolCall(id: id, name: name, arguments: "")))
        case .toolCallArguments(let index, let fragment):
            guard let position = toolCallPositions[index], case .toolCall(var call) = response.content[position] else { return }
            call.arguments += fragment
            response.content[position] = .toolCall(call)
        case .toolCallEnd(let index):
            guard let position = toolCallPositions[index], case .toolCall(var call) = response.content[position], call.arguments.isEmpty else { return }
            call.arguments = "{}"
            response.content[position] = .toolCall(call)
        case .usage(let usage):
            response.usage = usage
        case .finish(let reason, let stopSequence):
            response.finishReason = reason
            response.stopSequence = stopSequence
        case .end:
            completed = true
        case .failure(let error):
            failure = error
        }
    }
}

/// Applies a plan's response actions to each JSON event of an upstream SSE stream, keeping the stream's framing.
package struct StreamChunkTransformer: Sendable {
    private let plan: TransformPlan
    private var parser = SSEParser()

    /// Creates a transformer for a plan's response actions.
    package init(plan: TransformPlan) {
        self.plan = plan
    }

    /// Consumes upstream bytes and returns the complete events seen so far, edited.
    package mutating func feed(_ bytes: [UInt8]) -> [UInt8] {
        write(parser.feed(bytes))
    }

    /// Returns the edited events still held at end-of-file (an incomplete one is passed on as it was).
    package mutating func finish() -> [UInt8] {
        write(parser.finish())
    }

    private func write(_ events: [SSEEvent]) -> [UInt8] {
        var output: [UInt8] = []
        for event in events {
            if var json = try? JSON.parse(Array(event.data.utf8)), case .object = json {
                plan.applyToResponse(&json)
                SSEWriter.write(event: event.event, data: json, into: &output)
            } else {
                SSEWriter.write(event: event.event, rawData: event.data, into: &output)
            }
        }
        return output
    }
}
