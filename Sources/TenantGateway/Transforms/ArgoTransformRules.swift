/// The built-in transform rules for the `argo` provider type: Argo's quirks (UPSTREAMS.md §3), declaratively.
///
/// Patterns look at the model's `upstream_model`, in either of Argo's spellings: internal ids (`gpt5`,
/// `gpto3mini`, `claudeopus48`, `gemini25pro`) and display ids ("GPT-5", "Claude Opus 4.8"). The quirks rules
/// cannot express (Gemini's parallel tool calls, Claude's thinking per family, empty thinking blocks) are in
/// `ArgoRequestShaping`.
package enum ArgoTransformRules {
    /// Reasoning and newer models that reject `temperature` (and stream back nothing rather than an error).
    static let rejectsTemperature = ModelNamePattern.regex(
        #"(?i)(gpt[^a-z0-9]*5.*|gpt[^a-z0-9]*o[0-9].*|o[0-9].*|gemini.*|claude[^a-z0-9]*opus[^a-z0-9]*4[^a-z0-9]*[78].*)"#)

    /// The rules, in order.
    package static let rules: [TransformRule] = [
        // Argo has no `developer` role: send it as `system`.
        TransformRule(match: TransformMatch(providerType: .argo), actions: [.rewriteRole(from: "developer", to: "system")]),
        // Newer GPT models refuse `max_tokens` (a Chat Completions body passed through keeps the client's name).
        TransformRule(match: TransformMatch(providerType: .argo, model: .regex(#"(?i)(gpt.*|o[0-9].*)"#)), actions: [
            .rename(field: FieldPath("max_tokens")!, to: "max_completion_tokens", on: .request),
        ]),
        // Models that reject `temperature` get none.
        TransformRule(match: TransformMatch(providerType: .argo, model: rejectsTemperature), actions: [.drop(field: FieldPath("temperature")!, on: .request)]),
        // Gemini: null content crashes it, and its system content must be a plain string.
        TransformRule(match: TransformMatch(providerType: .argo, model: .glob("*gemini*")), actions: [
            .setDefault(field: FieldPath("messages[].content")!, value: .string(""), on: .request),
            .flattenContent(roles: ["system"], separator: "\n\n"),
        ]),
        // Claude through Vertex refuses long non-streaming calls: always stream, assemble for whole-answer clients.
        // Vertex's org policy refuses `strict` tools (400 FAILED_PRECONDITION): send them without it.
        TransformRule(match: TransformMatch(providerType: .argo, model: .glob("*claude*")), actions: [
            .forceStream,
            .drop(field: FieldPath("tools[].strict")!, on: .request),
        ]),
    ]
}
