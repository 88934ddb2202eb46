/// Turns the events of an OpenAI Responses upstream stream into IR stream events.
///
/// Function calls are numbered 0, 1, … in the order their items are added. A custom tool call's raw input is
/// re-encoded on the fly as the arguments `{"input": "<text>"}`, the shape its function-tool form takes.
/// `response.completed` and `response.incomplete` complete the stream; `response.failed` and `error` fail it.
struct ResponsesStreamDecoder: Sendable {
    private struct OpenCall: Sendable {
        var toolIndex: Int
        var custom: Bool
        var streamedInput = false
    }

    private var calls: [Int: OpenCall] = [:]
    private var nextToolIndex = 0
    private var sawToolCall = false
    private var started = false

    /// Decodes one upstream event, appending the IR events it stands for.
    mutating func decode(_ event: SSEEvent, into events: inout [StreamEvent]) {
        if event.isDoneMarker { return }
        guard let payload = try? JSON.parse(event.data.utf8), case .object(let object) = payload else {
            events.append(.failure(UpstreamProblem.invalidResponse("the stream sent an event that is not a JSON object")))
            return
        }
        let outputIndex = object["output_index"]?.intValue ?? -1
        switch object["type"]?.stringValue ?? event.event {
        case "response.created", "response.in_progress":
            if !started {
                started = true
                events.append(.start(id: object["response"]?["id"]?.stringValue ?? "", usage: nil))
            }
        case "response.output_item.added":
            guard let item = object["item"] else { return }
            let type = item["type"]?.stringValue
            guard type == "function_call" || type == "custom_tool_call" else { return }
            let toolIndex = nextToolIndex
            nextToolIndex += 1
            sawToolCall = true
            let custom = type == "custom_tool_call"
            calls[outputIndex] = OpenCall(toolIndex: toolIndex, custom: custom)
            events.append(.toolCallStart(index: toolIndex, id: item["call_id"]?.stringValue ?? generatedToolCallID(), name: item["name"]?.stringValue ?? ""))
            if custom {
                events.append(.toolCallArguments(index: toolIndex, fragment: "{\"\(ResponsesRequestCodec.customToolInputParameter)\":\""))
            }
        case "response.output_text.delta", "response.refusal.delta":
            if let text = object["delta"]?.stringValue, !text.isEmpty { events.append(.textDelta(text)) }
        case "response.reasoning_summary_text.delta", "response.reasoning_text.delta":
            if let text = object["delta"]?.stringValue, !text.isEmpty { events.append(.reasoningDelta(text)) }
        case "response.reasoning_summary_part.added":
            if let index = object["summary_index"]?.intValue, index > 0 { events.append(.reasoningDelta("\n\n")) }
        case "response.function_call_arguments.delta":
            guard var call = calls[outputIndex], let fragment = object["delta"]?.stringValue, !fragment.isEmpty else { return }
            call.streamedInput = true
            calls[outputIndex] = call
            events.append(.toolCallArguments(index: call.toolIndex, fragment: fragment))
        case "response.custom_tool_call_input.delta":
            guard var call = calls[outputIndex], let fragment = object["delta"]?.stringValue, !fragment.isEmpty else { return }
            call.streamedInput = true
            calls[outputIndex] = call
            events.append(.toolCallArguments(index: call.toolIndex, fragment: Self.escapedStringContent(fragment)))
        case "response.output_item.done":
            guard let call = calls.removeValue(forKey: outputIndex), let item = object["item"] else { return }
            if call.custom {
                if !call.streamedInput, let input = item["input"]?.stringValue, !input.isEmpty {
                    events.append(.toolCallArguments(index: call.toolIndex, fragment: Self.escapedStringContent(input)))
                }
                events.append(.toolCallArguments(index: call.toolIndex, fragment: "\"}"))
            } else if !call.streamedInput, let arguments = item["arguments"]?.stringValue, !arguments.isEmpty {
                events.append(.toolCallArguments(index: call.toolIndex, fragment: arguments))
            }
            events.append(.toolCallEnd(index: call.toolIndex))
        case "response.completed", "response.incomplete":
            let response = object["response"]
            if let usage = response?["usage"].flatMap(ResponsesResponseCodec.usage(from:)) { events.append(.usage(usage)) }
            let reason: FinishReason
            if object["type"] == "response.incomplete" {
                reason = ResponsesResponseCodec.incompleteReason(response?["incomplete_details"]?["reason"]?.stringValue)
            } else {
                reason = sawToolCall ? .toolCalls : .stop
            }
            events.append(.finish(reason, stopSequence: nil))
            events.append(.end)
        case "response.failed":
            events.append(.failure(Translation.decodeStreamError(["error": object["response"]?["error"] ?? .null], upstream: .openAIResponses)))
        case "error":
            events.append(.failure(Translation.decodeStreamError(payload, upstream: .openAIResponses)))
        default:
            return
        }
    }

    /// The JSON string escape of `text`, without the surrounding quotes, so it can be spliced into a string.
    static func escapedStringContent(_ text: String) -> String {
        var bytes: [UInt8] = []
        JSON.serializeString(text, into: &bytes)
        return String(decoding: bytes.dropFirst().dropLast(), as: UTF8.self)
    }
}

/// Writes IR stream events as an OpenAI Responses event stream, every event numbered by `sequence_number`.
///
/// Emits `response.created` and `response.in_progress`, then one output item per run of reasoning (summary
/// events), text (`output_text` events inside one content part) or tool call (`function_call_arguments` events;
/// for the client's custom tools one `custom_tool_call_input.delta` with the whole input once the call is
/// complete, since the input is carried inside JSON arguments upstream), each item closed before the next
/// opens, and finally `response.completed` (or `response.incomplete`) with the full response object.
struct ResponsesStreamEncoder: Sendable {
    private enum OpenItem: Sendable {
        case none
        case message(id: String, text: String)
        case reasoning(id: String, text: String)
        case tool(id: String, index: Int, call: ToolCall, custom: Bool)
    }

    private let clientModel: String
    private let customToolNames: Set<String>
    private let created: Int
    private var responseID = ""
    private var items = ItemBuilder(responseID: "resp_")
    private var sequenceNumber = 0
    private var started = false
    private var openItem = OpenItem.none
    private var output: [JSON] = []
    private var closedToolIndices: Set<Int> = []
    private var finish: FinishReason?
    private var usage: Usage?

    init(clientModel: String, customToolNames: Set<String>, created: Int) {
        self.clientModel = clientModel
        self.customToolNames = customToolNames
        self.created = created
    }

    /// Writes the client bytes for one IR event; returns an error when the event cannot be represented.
    mutating func encode(_ event: StreamEvent, into bytes: inout [UInt8]) -> GatewayError? {
        switch event {
        case .start(let id, let usage):
            if let usage { self.usage = usage }
            start(id: id, into: &bytes)
        case .textDelta(let text):
            if case .message(let id, let soFar) = openItem {
                openItem = .message(id: id, text: soFar + text)
                write(["type": "response.output_text.delta", "item_id": .string(id), "output_index": JSON(output.count), "content_index": 0, "delta": .string(text), "logprobs": []], into: &bytes)
                return nil
            }
            closeOpenItem(into: &bytes)
            let id = items.nextID("msg")
            write(["type": "response.output_item.added", "output_index": JSON(output.count), "item": ItemBuilder.message(id: id, text: nil, status: "in_progress")], into: &bytes)
            write(["type": "response.content_part.added", "item_id": .string(id), "output_index": JSON(output.count), "content_index": 0, "part": ItemBuilder.outputText("")], into: &bytes)
            openItem = .message(id: id, text: "")
            return encode(.textDelta(text), into: &bytes)
        case .reasoningDelta(let text):
            if case .reasoning(let id, let soFar) = openItem {
                openItem = .reasoning(id: id, text: soFar + text)
                write(["type": "response.reasoning_summary_text.delta", "item_id": .string(id), "output_index": JSON(output.count), "summary_index": 0, "delta": .string(text)], into: &bytes)
                return nil
            }
            closeOpenItem(into: &bytes)
            let id = items.nextID("rs")
            write(["type": "response.output_item.added", "output_index": JSON(output.count), "item": ItemBuilder.reasoning(id: id, text: nil, encryptedContent: nil)], into: &bytes)
            write(["type": "response.reasoning_summary_part.added", "item_id": .string(id), "output_index": JSON(output.count), "summary_index": 0, "part": ["type": "summary_text", "text": ""]], into: &bytes)
            openItem = .reasoning(id: id, text: "")
            return encode(.reasoningDelta(text), into: &bytes)
        case .reasoningSignature, .redactedReasoning:
            // Anthropic signatures and encrypted blocks have no place in a Responses reasoning item.
            return nil
        case .toolCallStart(let index, let id, let name):
            if closedToolIndices.contains(index) { return nil }
            if case .tool(_, let open, _, _) = openItem, open == index { return nil }
            closeOpenItem(into: &bytes)
            let custom = customToolNames.contains(name)
            let itemID = items.nextID(custom ? "ctc" : "fc")
            let call = ToolCall(id: id, name: name, arguments: "")
            write(["type": "response.output_item.added", "output_index": JSON(output.count), "item": ItemBuilder.toolCall(id: itemID, call: call, custom: custom, status: "in_progress")], into: &bytes)
            openItem = .tool(id: itemID, index: index, call: call, custom: custom)
        case .toolCallArguments(let index, let fragment):
            guard case .tool(let itemID, index, var call, let custom) = openItem else {
                return UpstreamProblem.invalidResponse("the stream interleaved the arguments of several tool calls, which a Responses stream cannot represent")
            }
            call.arguments += fragment
            openItem = .tool(id: itemID, index: index, call: call, custom: custom)
            if !custom {
                write(["type": "response.function_call_arguments.delta", "item_id": .string(itemID), "output_index": JSON(output.count), "delta": .string(fragment)], into: &bytes)
            }
        case .toolCallEnd(let index):
            if case .tool(_, index, _, _) = openItem { closeOpenItem(into: &bytes) }
        case .usage(let usage):
            self.usage = usage
        case .finish(let reason, _):
            closeOpenItem(into: &bytes)
            finish = reason
        case .end:
            start(id: "", into: &bytes)
            closeOpenItem(into: &bytes)
            let reason = finish ?? .stop
            let status = ResponsesResponseCodec.status(for: reason)
            let response = ResponsesResponseCodec.responseObject(
                id: responseID, clientModel: clientModel, created: created, status: status,
                incompleteReason: ResponsesResponseCodec.incompleteReasonText(reason), output: output, usage: usage)
            write(["type": .string(status == "completed" ? "response.completed" : "response.incomplete"), "response": response], into: &bytes)
        case .failure:
            return nil
        }
        return nil
    }

    /// The `error` event for a failure, numbered after the events already sent.
    mutating func errorEvent(_ error: GatewayError) -> [UInt8] {
        let bytes = error.responsesStreamEvent(sequenceNumber: sequenceNumber)
        sequenceNumber += 1
        return bytes
    }

    private mutating func start(id: String, into bytes: inout [UInt8]) {
        guard !started else { return }
        started = true
        responseID = ResponsesResponseCodec.responseID(fromUpstream: id)
        items = ItemBuilder(responseID: responseID)
        let response = ResponsesResponseCodec.responseObject(
            id: responseID, clientModel: clientModel, created: created, status: "in_progress", incompleteReason: nil, output: [], usage: nil)
        write(["type": "response.created", "response": response], into: &bytes)
        write(["type": "response.in_progress", "response": response], into: &bytes)
    }

    private mutating func closeOpenItem(into bytes: inout [UInt8]) {
        let index = JSON(output.count)
        switch openItem {
        case .none:
            return
        case .message(let id, let text):
            write(["type": "response.output_text.done", "item_id": .string(id), "output_index": index, "content_index": 0, "text": .string(text), "logprobs": []], into: &bytes)
            write(["type": "response.content_part.done", "item_id": .string(id), "output_index": index, "content_index": 0, "part": ItemBuilder.outputText(text)], into: &bytes)
            let item = ItemBuilder.message(id: id, text: text, status: "completed")
            write(["type": "response.output_item.done", "output_index": index, "item": item], into: &bytes)
            output.append(item)
        case .reasoning(let id, let text):
            write(["type": "response.reasoning_summary_text.done", "item_id": .string(id), "output_index": index, "summary_index": 0, "text": .string(text)], into: &bytes)
            write(["type": "response.reasoning_summary_part.done", "item_id": .string(id), "output_index": index, "summary_index": 0, "part": ["type": "summary_text", "text": .string(text)]], into: &bytes)
            let item = ItemBuilder.reasoning(id: id, text: text, encryptedContent: nil)
            write(["type": "response.output_item.done", "output_index": index, "item": item], into: &bytes)
            output.append(item)
        case .tool(let id, let toolIndex, let call, let custom):
            if custom {
                let input = ItemBuilder.customInput(fromArguments: call.arguments)
                if !input.isEmpty {
                    write(["type": "response.custom_tool_call_input.delta", "item_id": .string(id), "output_index": index, "delta": .string(input)], into: &bytes)
                }
                write(["type": "response.custom_tool_call_input.done", "item_id": .string(id), "output_index": index, "input": .string(input)], into: &bytes)
            } else {
                write(["type": "response.function_call_arguments.done", "item_id": .string(id), "output_index": index, "name": .string(call.name), "arguments": .string(call.arguments.isEmpty ? "{}" : call.arguments)], into: &bytes)
            }
            let item = ItemBuilder.toolCall(id: id, call: call, custom: custom, status: "completed")
            write(["type": "response.output_item.done", "output_index": index, "item": item], into: &bytes)
            output.append(item)
            closedToolIndices.insert(toolIndex)
        }
        openItem = .none
    }

    /// Writes one event, named by its type and numbered.
    private mutating func write(_ event: JSONObject, into bytes: inout [UInt8]) {
        var numbered = event
        numbered["sequence_number"] = JSON(sequenceNumber)
        sequenceNumber += 1
        SSEWriter.write(event: event["type"]?.stringValue, data: .object(numbered), into: &bytes)
    }
}
