/// What a request body asks of a model, found by scanning the parsed body of any dialect.
///
/// Images are content parts typed `image` (Anthropic), `image_url` (OpenAI Chat), `input_image` (OpenAI
/// Responses), or parts with `inlineData`/`fileData` of an `image/…` type (Google), wherever they sit in the
/// conversation (tool results included). Tool arguments and schemas are not searched: they are data, not content.
package enum RequestContentScan {
    /// The members whose values are never content: tool arguments, inputs and schemas.
    private static let opaqueKeys: Set<String> = ["input", "arguments", "parameters", "input_schema", "args", "functionCall", "function_call", "schema"]
    /// The top-level members that hold conversation content in some dialect.
    private static let contentKeys = ["messages", "system", "input", "contents", "systemInstruction", "instructions"]

    /// How many images the body carries.
    package static func imageCount(in body: JSON) -> Int {
        contentKeys.reduce(0) { total, key in total + (body[key].map(countImages(in:)) ?? 0) }
    }

    /// Whether the body declares at least one tool.
    package static func declaresTools(_ body: JSON) -> Bool {
        if case .array(let tools)? = body["tools"], !tools.isEmpty { return true }
        if case .array(let functions)? = body["functions"], !functions.isEmpty { return true }
        return false
    }

    private static func countImages(in value: JSON) -> Int {
        switch value {
        case .array(let items):
            return items.reduce(0) { $0 + countImages(in: $1) }
        case .object(let object):
            if isImagePart(object) { return 1 }
            var total = 0
            for (key, member) in object where !opaqueKeys.contains(key) {
                total += countImages(in: member)
            }
            return total
        default:
            return 0
        }
    }

    private static func isImagePart(_ object: JSONObject) -> Bool {
        switch object["type"]?.stringValue {
        case "image", "image_url", "input_image": return true
        default: break
        }
        for key in ["inlineData", "inline_data", "fileData", "file_data"] {
            if let media = object[key]?["mimeType"]?.stringValue ?? object[key]?["mime_type"]?.stringValue, media.hasPrefix("image/") {
                return true
            }
        }
        return false
    }
}

/// Refuses requests that need a capability the model's config does not declare, instead of quietly stripping content.
package enum CapabilityCheck {
    /// Throws a 400 when the body carries images and the model lacks `vision`, or tools and it lacks `tools`.
    ///
    /// A model with no declared capabilities accepts everything.
    package static func requireCapabilities(of body: JSON, model: ModelConfig) throws(GatewayError) {
        let declared = model.capabilities
        guard !declared.isEmpty else { return }
        let list = declared.map(\.rawValue).sorted().joined(separator: ", ")
        if !declared.contains(.vision) {
            let images = RequestContentScan.imageCount(in: body)
            if images > 0 {
                throw GatewayError(
                    .invalidRequest, code: "model_lacks_vision",
                    message: "The model '\(model.alias)' does not accept images (its declared capabilities are: \(list)), and the request has \(images) image\(images == 1 ? "" : "s"). Remove the images or use a model with the 'vision' capability.",
                    parameter: "messages")
            }
        }
        if !declared.contains(.tools), RequestContentScan.declaresTools(body) {
            throw GatewayError(
                .invalidRequest, code: "model_lacks_tools",
                message: "The model '\(model.alias)' does not support tools (its declared capabilities are: \(list)). Remove 'tools' or use a model with the 'tools' capability.",
                parameter: "tools")
        }
    }
}
