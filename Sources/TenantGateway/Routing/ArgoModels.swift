import Logging

/// A provider that discovers models and can say how discovery stands and fetch again on demand
/// (`rosetta models [--refresh]`).
package protocol ModelDiscoveryReporting: DynamicModelSource {
    /// Fetches the provider's model list again now (a failure keeps the last list and is reported in the status).
    func refreshDiscoveredModels() async
    /// The discovery's state (`state`, `models`, `last_error`, …) without fetching.
    func discoveryStatus() async -> JSON
}

/// One model Argo lists in `GET /v1/models`, with the clean name rosettad serves it under.
package struct ArgoModel: Sendable, Equatable {
    /// Argo's display id ("Claude Opus 4.8", "GPT-4o").
    package var displayID: String
    /// Argo's internal id (`claudeopus48`, `gpt4o`): what the upstream request carries.
    package var internalID: String
    /// The vendor (from `owned_by`, else from the name).
    package var vendor: ModelVendor
    /// The clean name (`claude-opus-4-8`, `gpt-4o`, `gemini-2.5-pro`), see `ArgoModelList.slug`.
    package var slug: String

    /// Creates a model record.
    package init(displayID: String, internalID: String, vendor: ModelVendor, slug: String) {
        self.displayID = displayID
        self.internalID = internalID
        self.vendor = vendor
        self.slug = slug
    }

    /// The names clients list it under: the clean name, then `<vendor>/<clean name>`.
    package var listedNames: [String] { [slug, vendor.prefix + slug] }

    /// Every name that reaches it (compared case-insensitively): the clean name, `<vendor>/…`, `<provider>:…`,
    /// and Argo's own display and internal ids.
    package func names(provider: String) -> [String] {
        [slug, vendor.prefix + slug, provider + ":" + slug, displayID, internalID]
    }
}

/// A pure reading of Argo's model list and the clean names derived from it (docs/argo.md, "Model discovery").
package enum ArgoModelList {
    /// Reads a `GET /v1/models` answer: `{"data": [{"id": "Claude Opus 4.8", "internal_id": "claudeopus48",
    /// "owned_by": "anthropic"}, …]}`, or the older `{"id": "gpt35", "model_name": "GPT-3.5 Turbo"}` entries
    /// (also as a bare array). Entries without a usable id are skipped; models keep the answer's order, and a
    /// clean name already taken keeps its first model.
    package static func parse(_ answer: JSON) throws(GatewayError) -> [ArgoModel] {
        let entries: [JSON]
        if let data = answer["data"]?.arrayValue {
            entries = data
        } else if let list = answer.arrayValue {
            entries = list
        } else {
            throw GatewayError(.upstream, code: "argo_models_unreadable", message: "Argo's model list is neither {\"data\": [...]} nor a list.")
        }
        var models: [ArgoModel] = []
        var taken: Set<String> = []
        for entry in entries {
            guard let id = entry["id"]?.stringValue?.trimmedSpaces, !id.isEmpty else { continue }
            let display: String
            let internalName: String
            if let internalID = entry["internal_id"]?.stringValue?.trimmedSpaces, !internalID.isEmpty {
                (display, internalName) = (id, internalID)
            } else if let name = entry["model_name"]?.stringValue?.trimmedSpaces, !name.isEmpty {
                (display, internalName) = (name, id)  // the old format: `id` is the internal id
            } else {
                (display, internalName) = (id, id)
            }
            let vendor = entry["owned_by"]?.stringValue.flatMap(Self.vendor(ownedBy:)) ?? ArgoSettings.vendor(ofUpstreamModel: display + " " + internalName)
            let slug = Self.slug(display, vendor: vendor)
            guard !slug.isEmpty, taken.insert(slug).inserted else { continue }
            models.append(ArgoModel(displayID: display, internalID: internalName, vendor: vendor, slug: slug))
        }
        return models
    }

    /// The vendor an `owned_by` names (`anthropic`, `openai`, `google`, also `Google LLC` or `OpenAI`).
    static func vendor(ownedBy: String) -> ModelVendor? {
        let folded = ownedBy.lowercased()
        return ModelVendor.allCases.first { folded.contains($0.rawValue) }
    }

    /// The clean name of a display id: lower-cased; every run of characters other than letters, digits and `.`
    /// becomes one `-`; no `-` or `.` at either end; for Anthropic models `.` becomes `-` too, as Anthropic
    /// writes versions ("Claude Opus 4.8" → `claude-opus-4-8`, "GPT-4o" → `gpt-4o`, "Gemini 2.5 Pro" →
    /// `gemini-2.5-pro`).
    package static func slug(_ display: String, vendor: ModelVendor) -> String {
        var slug = ""
        var pendingDash = false
        for scalar in display.lowercased().unicodeScalars {
            let kept = (scalar >= "a" && scalar <= "z") || (scalar >= "0" && scalar <= "9") || (scalar == "." && vendor != .anthropic)
            if kept {
                if pendingDash, !slug.isEmpty { slug.append("-") }
                pendingDash = false
                slug.unicodeScalars.append(scalar)
            } else {
                pendingDash = true
            }
        }
        while slug.hasSuffix(".") || slug.hasSuffix("-") { slug.removeLast() }
        while slug.hasPrefix(".") || slug.hasPrefix("-") { slug.removeFirst() }
        return slug
    }

    /// The model a requested name stands for, case-insensitively (see `ArgoModel.names(provider:)`).
    package static func find(_ requested: String, in models: [ArgoModel], provider: String) -> ArgoModel? {
        let folded = requested.lowercased()
        return models.first { model in model.names(provider: provider).contains { $0.lowercased() == folded } }
    }
}

/// The discovered models of one `argo` provider: fetched on first need, again when older than the refresh
/// interval or when asked, keeping the last good list when a fetch fails.
///
/// Nothing is fetched at start: the first model listing, the first unknown model name or `rosetta models`
/// fetches (which starts the tunnel like any Argo request).
package actor ArgoModelDiscovery {
    /// How the list stands.
    enum State {
        /// Never fetched successfully.
        case empty
        /// A fetch is under way; `previous` is served meanwhile.
        case fetching(previous: Snapshot?)
        /// A list, fetched at a time.
        case ready(Snapshot)
    }

    /// A fetched list: when Argo sent it, and when it was last tried again (a failed try keeps the list).
    struct Snapshot {
        var models: [ArgoModel]
        var fetchedAt: ContinuousClock.Instant
        var triedAt: ContinuousClock.Instant
    }

    /// How old the list may be before a name it lacks makes discovery fetch it again at once.
    package static let onDemandAge: Duration = .seconds(60)
    /// How long after a failed fetch (with no list yet) the next use may try again without being asked.
    package static let retryAfterFailure: Duration = .seconds(30)

    /// The provider's name (for `<provider>:` names and logs).
    package nonisolated let providerName: String
    private let refreshInterval: Duration?
    private let fetchList: @Sendable () async throws(GatewayError) -> JSON
    private let now: @Sendable () -> ContinuousClock.Instant
    private let logger: Logger
    private var state: State = .empty
    private var lastFailure: (message: String, at: ContinuousClock.Instant)?
    private var waiters: [CheckedContinuation<Void, Never>] = []

    /// Creates the discovery; `fetchList` performs `GET /v1/models` and returns the parsed answer.
    package init(
        providerName: String, refreshInterval: Duration?, logger: Logger,
        now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now },
        fetchList: @escaping @Sendable () async throws(GatewayError) -> JSON
    ) {
        self.providerName = providerName
        self.logger = logger
        self.refreshInterval = refreshInterval
        self.now = now
        self.fetchList = fetchList
    }

    /// The models, fetched first when never fetched, stale, or `refresh` is asked for.
    package func models(refresh: Bool = false) async -> [ArgoModel] {
        switch state {
        case .fetching:
            await withCheckedContinuation { waiters.append($0) }
            return cachedModels()
        case .ready(let snapshot):
            let stale = refreshInterval.map { now() - snapshot.triedAt >= $0 } ?? false
            guard refresh || stale else { return snapshot.models }
            return await fetch(previous: snapshot)
        case .empty:
            if !refresh, let lastFailure, now() - lastFailure.at < Self.retryAfterFailure { return [] }
            return await fetch(previous: nil)
        }
    }

    /// The models fetched so far, without fetching.
    package func cachedModels() -> [ArgoModel] {
        switch state {
        case .ready(let snapshot), .fetching(previous: .some(let snapshot)): snapshot.models
        case .empty, .fetching(previous: nil): []
        }
    }

    /// The model a requested name stands for; a name the list lacks fetches it again when older than `onDemandAge`.
    package func resolve(_ requested: String) async -> ArgoModel? {
        if let found = ArgoModelList.find(requested, in: await models(), provider: providerName) { return found }
        guard case .ready(let snapshot) = state, now() - snapshot.triedAt >= Self.onDemandAge else { return nil }
        return ArgoModelList.find(requested, in: await models(refresh: true), provider: providerName)
    }

    /// The discovery's state for status and `rosetta models`: `state`, `model_count`, `age_seconds`, `last_error`.
    package func status() -> JSON {
        var status: JSONObject = [:]
        switch state {
        case .empty:
            status["state"] = .string(lastFailure == nil ? "not_fetched" : "failed")
        case .fetching:
            status["state"] = "fetching"
        case .ready(let snapshot):
            status["state"] = "ready"
            status["age_seconds"] = JSON(Int((now() - snapshot.fetchedAt).components.seconds))
        }
        status["model_count"] = JSON(cachedModels().count)
        if let refreshInterval { status["refresh_seconds"] = JSON(Int(refreshInterval.components.seconds)) }
        if let lastFailure {
            status["last_error"] = .string(lastFailure.message)
            status["last_error_age_seconds"] = JSON(Int((now() - lastFailure.at).components.seconds))
        }
        return .object(status)
    }

    private func fetch(previous: Snapshot?) async -> [ArgoModel] {
        state = .fetching(previous: previous)
        defer {
            let resumed = waiters
            waiters.removeAll()
            for waiter in resumed { waiter.resume() }
        }
        do {
            let models = try ArgoModelList.parse(try await fetchList())
            let fetchedAt = now()
            state = .ready(Snapshot(models: models, fetchedAt: fetchedAt, triedAt: fetchedAt))
            lastFailure = nil
            logger.info("Argo models discovered", metadata: ["provider": "\(providerName)", "argo.models": "\(models.count)"])
            return models
        } catch {
            lastFailure = (error.message, now())
            logger.warning("Argo model discovery failed; keeping the last list", metadata: [
                "provider": "\(providerName)", "error.code": "\(error.code)", "error": "\(error.message)",
                "argo.models": "\(previous?.models.count ?? 0)",
            ])
            if let previous {
                // Keep the last good list, and wait a whole interval before trying again unasked.
                state = .ready(Snapshot(models: previous.models, fetchedAt: previous.fetchedAt, triedAt: now()))
                return previous.models
            }
            state = .empty
            return []
        }
    }
}

extension String {
    fileprivate var trimmedSpaces: String {
        var text = Substring(self)
        while text.first?.isWhitespace == true { text = text.dropFirst() }
        while text.last?.isWhitespace == true { text = text.dropLast() }
        return String(text)
    }
}
