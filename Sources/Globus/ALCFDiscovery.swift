import Logging
import TenantGateway

/// One model ALCF lists, with where it runs and whether it is up.
package struct ALCFModel: Sendable, Equatable {
    /// Whether a model is serving.
    package enum Status: String, Sendable, Equatable {
        /// A job serves it now.
        case running
        /// A job for it is queued or starting.
        case queued
        /// No job serves it; the first request starts one (a cold start) or it is offline.
        case stopped
    }

    /// The cluster (`sophia`).
    package var cluster: String
    /// The framework path segment (`vllm`).
    package var framework: String
    /// The model id on the cluster (`openai/gpt-oss-120b`).
    package var id: String
    /// Whether it is serving.
    package var status: Status
}

/// A pure reading of ALCF's `list-endpoints` and `/{cluster}/jobs` answers (UPSTREAMS.md §2).
package enum ALCFDiscoveryParser {
    /// The clusters, their frameworks and models from `list-endpoints`, in the answer's order.
    package static func endpoints(_ answer: JSON) -> [(cluster: String, framework: String, models: [String])] {
        guard case .object(let clusters)? = answer["clusters"] else { return [] }
        var result: [(cluster: String, framework: String, models: [String])] = []
        for (cluster, info) in clusters {
            guard case .object(let frameworks)? = info["frameworks"] else { continue }
            for (framework, details) in frameworks {
                let models = details["models"]?.arrayValue?.compactMap(\.stringValue) ?? []
                result.append((cluster, framework, models))
            }
        }
        return result
    }

    /// Model id → status from a `jobs` answer; `running` wins over `queued` over `stopped`. A running job whose
    /// `Model Status` is `starting` counts as queued.
    package static func statuses(_ answer: JSON) -> [String: ALCFModel.Status] {
        var statuses: [String: ALCFModel.Status] = [:]
        func record(_ list: String, as status: ALCFModel.Status) {
            for job in answer[list]?.arrayValue ?? [] {
                var effective = status
                if status == .running, job["Model Status"]?.stringValue?.lowercased() == "starting" { effective = .queued }
                let names = (job["Models"]?.stringValue ?? "").split(separator: ",").map { String($0).trimmingWhitespace }.filter { !$0.isEmpty }
                for name in names {
                    if let current = statuses[name], rank(current) >= rank(effective) { continue }
                    statuses[name] = effective
                }
            }
        }
        record("running", as: .running)
        record("private_batch_running", as: .running)
        record("queued", as: .queued)
        record("private_batch_queued", as: .queued)
        record("stopped", as: .stopped)
        return statuses
    }

    private static func rank(_ status: ALCFModel.Status) -> Int {
        switch status {
        case .running: 2
        case .queued: 1
        case .stopped: 0
        }
    }
}

/// The models an `alcf` provider's grant can reach, discovered from `list-endpoints` and each cluster's
/// `jobs`, cached and refreshed when older than the refresh interval (or on demand).
///
/// Discovered models are served as `<provider>-<cluster>/<id>` (`alcf-sophia/openai/gpt-oss-120b`) and by
/// their bare id; configured models need no discovery.
package actor ALCFDiscovery {
    /// Where discovery stands.
    private enum State {
        /// Never fetched.
        case empty
        /// A fetch is running; callers that need its result wait.
        case fetching(previous: Snapshot?)
        /// The latest result.
        case ready(Snapshot)
    }

    /// One discovery result.
    private struct Snapshot {
        var fetchedAt: Double
        var models: [ALCFModel]
        var frameworks: [String: String]
    }

    /// The provider's name, the prefix of the names discovered models are served under.
    package nonisolated let providerName: String
    private let baseURL: String
    private let caFile: String?
    private let grant: GlobusGrant
    private let http: UpstreamHTTPClient
    private let refreshInterval: Double
    private let clock: @Sendable () -> Double
    private let logger: Logger
    private var state: State = .empty
    private var waiters: [CheckedContinuation<Void, Never>] = []

    /// Creates the discovery for a provider.
    package init(provider: ProviderConfig, grant: GlobusGrant, http: UpstreamHTTPClient, refreshInterval: Double = 300,
                 clock: @escaping @Sendable () -> Double = WallClock.now, logger: Logger) {
        self.providerName = provider.name
        self.baseURL = provider.baseURL
        self.caFile = provider.caFile
        self.grant = grant
        self.http = http
        self.refreshInterval = refreshInterval
        self.clock = clock
        self.logger = logger
    }

    /// The clusters' frameworks seen so far (never fetches).
    package func frameworks() -> [String: String] {
        switch state {
        case .ready(let snapshot), .fetching(previous: .some(let snapshot)): snapshot.frameworks
        default: [:]
        }
    }

    /// The discovered models, fetched first when never fetched, stale, or `refresh` is asked for.
    package func models(refresh: Bool = false) async -> [ALCFModel] {
        switch state {
        case .ready(let snapshot) where !refresh && clock() - snapshot.fetchedAt < refreshInterval:
            return snapshot.models
        case .fetching:
            await withCheckedContinuation { waiters.append($0) }
            if case .ready(let snapshot) = state { return snapshot.models }
            return []
        case .ready(let snapshot):
            return await fetch(previous: snapshot)
        case .empty:
            return await fetch(previous: nil)
        }
    }

    /// How old the list may be before a name it lacks makes discovery fetch it again at once.
    package static let onDemandAge: Double = 30

    /// The model a requested name stands for: `<provider>-<cluster>/<id>` or a bare id (running first).
    /// A name the cached list lacks refreshes the list first when it is older than `onDemandAge`.
    package func resolve(_ requested: String) async -> ALCFModel? {
        if let found = Self.find(requested, in: await models(), provider: providerName) { return found }
        guard case .ready(let snapshot) = state, clock() - snapshot.fetchedAt >= Self.onDemandAge else { return nil }
        return Self.find(requested, in: await models(refresh: true), provider: providerName)
    }

    private static func find(_ requested: String, in models: [ALCFModel], provider providerName: String) -> ALCFModel? {
        let prefix = providerName.lowercased() + "-"
        if requested.lowercased().hasPrefix(prefix), let slash = requested.firstIndex(of: "/") {
            let cluster = requested[requested.index(requested.startIndex, offsetBy: prefix.count)..<slash].lowercased()
            let id = requested[requested.index(after: slash)...]
            return models.first { $0.cluster == cluster && $0.id.lowercased() == id.lowercased() }
        }
        let matches = models.filter { $0.id.lowercased() == requested.lowercased() }
        return matches.first { $0.status == .running } ?? matches.first { $0.status == .queued } ?? matches.first
    }

    /// The name a discovered model is served under with its cluster.
    package nonisolated func qualifiedName(_ model: ALCFModel) -> String {
        "\(providerName)-\(model.cluster)/\(model.id)"
    }

    private func fetch(previous: Snapshot?) async -> [ALCFModel] {
        state = .fetching(previous: previous)
        defer {
            let resumed = waiters
            waiters.removeAll()
            for waiter in resumed { waiter.resume() }
        }
        do {
            let snapshot = try await download()
            state = .ready(snapshot)
            logger.info("ALCF models discovered", metadata: ["alcf.models": "\(snapshot.models.count)"])
            return snapshot.models
        } catch {
            logger.warning("ALCF discovery failed; keeping the previous list", metadata: ["error": "\(error.message)"])
            if let previous {
                state = .ready(Snapshot(fetchedAt: clock(), models: previous.models, frameworks: previous.frameworks))
                return previous.models
            }
            state = .empty
            return []
        }
    }

    private func download() async throws(GatewayError) -> Snapshot {
        let token = try await grant.accessToken()
        let endpoints = ALCFDiscoveryParser.endpoints(try await get("/list-endpoints", token: token))
        var frameworks: [String: String] = [:]
        var models: [ALCFModel] = []
        var statusesByCluster: [String: [String: ALCFModel.Status]] = [:]
        for entry in endpoints {
            if frameworks[entry.cluster] == nil { frameworks[entry.cluster] = entry.framework }
            if statusesByCluster[entry.cluster] == nil {
                statusesByCluster[entry.cluster] = (try? await get("/\(entry.cluster)/jobs", token: token)).map(ALCFDiscoveryParser.statuses) ?? [:]
            }
            for id in entry.models {
                models.append(ALCFModel(cluster: entry.cluster, framework: entry.framework, id: id, status: statusesByCluster[entry.cluster]?[id] ?? .stopped))
            }
        }
        return Snapshot(fetchedAt: clock(), models: models, frameworks: frameworks)
    }

    private func get(_ path: String, token: String) async throws(GatewayError) -> JSON {
        let request = UpstreamRequest(
            url: baseURL + path, method: "GET",
            headers: [("accept", "application/json"), ("authorization", "Bearer \(token)"), ("user-agent", "rosettad/\(RosettaVersion.current)")],
            connectTimeout: .seconds(10), idleTimeout: .seconds(60), totalTimeout: .seconds(90), caFile: caFile)
        do {
            let response = try await http.execute(request)
            let body = try await response.collectBody(upTo: 8 << 20)
            guard response.status == 200, let json = try? JSON.parse(body) else {
                throw GatewayError(.upstream, code: "alcf_discovery_failed", message: "GET \(path) answered HTTP \(response.status)")
            }
            return json
        } catch let error as GatewayError {
            throw error
        } catch {
            throw GatewayError(.upstream, code: "alcf_discovery_failed", message: "GET \(path) failed: \(error)")
        }
    }
}
