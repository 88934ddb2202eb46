/// The vendor whose name prefixes a model in clients that match vendor-qualified names (`openai/gpt-5`).
package enum ModelVendor: String, Sendable, Hashable, CaseIterable {
    /// Anthropic (`anthropic/…`).
    case anthropic
    /// OpenAI (`openai/…`).
    case openai
    /// Google (`google/…`).
    case google

    /// The prefix clients put before the model name, slash included.
    package var prefix: String { rawValue + "/" }

    /// Splits `vendor/name` (vendor case-insensitive) into the vendor and the rest; `nil` for any other name.
    package static func split(_ name: String) -> (vendor: ModelVendor, bare: String)? {
        guard let slash = name.firstIndex(of: "/"),
              let vendor = ModelVendor(rawValue: name[..<slash].lowercased()) else { return nil }
        let bare = String(name[name.index(after: slash)...])
        return bare.isEmpty ? nil : (vendor, bare)
    }
}

extension ProviderType {
    /// The vendor of the models this provider type serves, when the model does not declare one.
    ///
    /// OpenAI-compatible endpoints serve every vendor's models, but clients that match vendor-qualified
    /// names know them as `openai/…` unless the model's `vendor:` says otherwise.
    package var defaultVendor: ModelVendor {
        switch self {
        case .openAIChat, .openAIResponses, .argo: .openai
        case .anthropic: .anthropic
        case .google: .google
        case .alcf: .openai
        }
    }
}
