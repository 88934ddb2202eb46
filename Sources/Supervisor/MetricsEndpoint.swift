import Logging
import NIOHTTP1
import ServiceLifecycle
import TenantGateway

/// Answers `GET /metrics` (and nothing else) on the optional scrape port `metrics.listen`.
struct MetricsScrapeHandler: GatewayRequestHandler {
    /// Refreshes gauges computed at scrape time (the system daemon's tenant counts).
    let beforeScrape: @Sendable () async -> Void

    func handle(_ request: GatewayRequest, writer: some ResponseWriter) async {
        guard request.path == "/metrics", request.method == .GET || request.method == .HEAD else {
            try? await writer.writeWhole(
                status: .notFound, headers: ["content-type": "text/plain; charset=utf-8"], body: Array("only GET /metrics is served here\n".utf8))
            return
        }
        await beforeScrape()
        await ObservedHandler<MetricsScrapeHandler>.writeMetrics(to: writer)
    }
}

/// Serves the scrape port as a lifecycle service: bound at start, drained on graceful shutdown.
///
/// A port that cannot be bound is logged and the daemon serves on without it (metrics stay on the sockets).
struct MetricsScrapeService: Service {
    let port: Int
    let limits: HTTPFrontLimits
    let beforeScrape: @Sendable () async -> Void
    let logger: Logger

    func run() async throws {
        let listener: HTTPFrontListener
        do {
            listener = try await HTTPFrontListener.bindLoopbackTCP(port: port, limits: limits, logger: logger)
        } catch {
            logger.error("cannot serve metrics on the scrape port; they stay on the sockets", metadata: ["tcp.port": "\(port)", "error": "\(error)"])
            return
        }
        let server = HTTPFrontServer(listeners: [listener], handler: MetricsScrapeHandler(beforeScrape: beforeScrape), logger: logger)
        await withGracefulShutdownHandler {
            await server.run()
        } onGracefulShutdown: {
            server.startDraining(deadline: .now + .seconds(1))
        }
    }

    /// The service for a config's `metrics.listen`, or `nil` when none is set.
    static func forConfig(
        _ config: GatewayConfig, logger: Logger, beforeScrape: @escaping @Sendable () async -> Void = {}
    ) -> ServiceGroupConfiguration.ServiceConfiguration? {
        guard let listen = config.observability.metrics.listen else { return nil }
        return .init(service: MetricsScrapeService(port: listen.port, limits: config.limits, beforeScrape: beforeScrape, logger: logger))
    }
}
