import CoreMetrics
import Metrics
import Prometheus
import Synchronization

/// The names of every metric rosettad exports (see docs/observability.md).
package enum MetricName {
    /// Counter of model requests by `dialect`, `provider`, `model`, `status_class` (and `tenant` when enabled).
    package static let requests = "rosetta_requests_total"
    /// Counter of failed model requests by `dialect`, `provider`, `model`, `class` (and `tenant`).
    package static let errors = "rosetta_request_errors_total"
    /// Gauge of model requests in flight (by `tenant` when enabled).
    package static let inFlight = "rosetta_requests_in_flight"
    /// Histogram of whole-request latency in seconds by `provider`, `model` (and `tenant`).
    package static let duration = "rosetta_request_duration_seconds"
    /// Histogram of the time to the response's first byte in seconds by `provider`, `model` (and `tenant`).
    package static let timeToFirstByte = "rosetta_time_to_first_byte_seconds"
    /// Counter of tokens reported in responses' usage by `provider`, `model`, `direction` (`in`/`out`) (and `tenant`).
    package static let tokens = "rosetta_tokens_total"
    /// Gauge of SSH tunnels in each `state`.
    package static let tunnels = "rosetta_tunnels"
    /// Counter of ssh (re)starts after a tunnel's first one.
    package static let tunnelRestarts = "rosetta_tunnel_restarts_total"
    /// Counter of Globus token refreshes that succeeded.
    package static let grantRefreshes = "rosetta_grant_refreshes_total"
    /// Counter of Globus token refreshes that failed, by `reason` (`refused`, `transient`).
    package static let grantRefreshFailures = "rosetta_grant_refresh_failures_total"
    /// Gauge of tenants enabled (system mode).
    package static let tenantsEnabled = "rosetta_tenants_enabled"
    /// Gauge of tenants with a request in flight or in the last five minutes (system mode).
    package static let tenantsActive = "rosetta_tenants_active"
}

/// One finished model request as the metrics see it: labels already bounded.
package struct RequestOutcome: Sendable, Equatable {
    /// The client's dialect.
    package var dialect: Dialect
    /// The provider's configured name, or `none` when the request never reached a route.
    package var provider: String
    /// The model's catalog alias, or `other` when the request named no model the catalog knows.
    package var model: String
    /// The HTTP status answered (200 for a stream that failed after its head).
    package var status: Int
    /// The failure's class (a `GatewayError.Kind` raw value or `client_disconnected`), `nil` on success.
    package var errorClass: String?
    /// The whole request's duration.
    package var duration: Duration
    /// The time until the first response byte was written, when one was.
    package var timeToFirstByte: Duration?
    /// Input tokens from the response's usage, when known.
    package var inputTokens: Int?
    /// Output tokens from the response's usage, when known.
    package var outputTokens: Int?

    /// Creates an outcome.
    package init(
        dialect: Dialect, provider: String, model: String, status: Int, errorClass: String?, duration: Duration,
        timeToFirstByte: Duration?, inputTokens: Int?, outputTokens: Int?
    ) {
        self.dialect = dialect
        self.provider = provider
        self.model = model
        self.status = status
        self.errorClass = errorClass
        self.duration = duration
        self.timeToFirstByte = timeToFirstByte
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
    }

    /// `2xx`, `4xx`, `5xx`, … from the status.
    package var statusClass: String { "\(min(max(status / 100, 1), 5))xx" }
}

/// Records the gateway's metrics through swift-metrics, into the factory given (the process's by default).
///
/// Label values are bounded: providers come from the config, models from the catalog (anything else is `other`),
/// dialects and classes from fixed sets; the `tenant` label is present only when the admin enabled it.
package struct GatewayMetrics: Sendable {
    /// The factory the metrics are made with.
    package let factory: any MetricsFactory
    /// The `tenant` label's value, or `nil` when per-tenant labels are off.
    package let tenant: String?

    /// Creates a recorder; `tenant` is set only when `metrics.per_tenant_labels` is on.
    package init(factory: any MetricsFactory = MetricsSystem.factory, tenant: String? = nil) {
        self.factory = factory
        self.tenant = tenant
    }

    /// The process-wide recorder without a tenant label (for tunnels and grants).
    package static var process: GatewayMetrics { GatewayMetrics() }

    private func labels(_ pairs: [(String, String)]) -> [(String, String)] {
        guard let tenant else { return pairs }
        return pairs + [("tenant", tenant)]
    }

    /// Counts a model request as started.
    package func requestStarted() {
        Meter(label: MetricName.inFlight, dimensions: labels([]), factory: factory).increment()
    }

    /// Records a finished model request: the counters, the histograms, and the in-flight gauge.
    package func requestFinished(_ outcome: RequestOutcome) {
        Meter(label: MetricName.inFlight, dimensions: labels([]), factory: factory).decrement()
        let route = [("provider", outcome.provider), ("model", outcome.model)]
        Counter(
            label: MetricName.requests,
            dimensions: labels([("dialect", outcome.dialect.rawValue)] + route + [("status_class", outcome.statusClass)]),
            factory: factory
        ).increment()
        if let errorClass = outcome.errorClass {
            Counter(
                label: MetricName.errors, dimensions: labels([("dialect", outcome.dialect.rawValue)] + route + [("class", errorClass)]),
                factory: factory
            ).increment()
        }
        Timer(label: MetricName.duration, dimensions: labels(route), factory: factory).recordNanoseconds(outcome.duration.nanoseconds)
        if let firstByte = outcome.timeToFirstByte {
            Timer(label: MetricName.timeToFirstByte, dimensions: labels(route), factory: factory).recordNanoseconds(firstByte.nanoseconds)
        }
        if let input = outcome.inputTokens, input > 0 {
            Counter(label: MetricName.tokens, dimensions: labels(route + [("direction", "in")]), factory: factory).increment(by: input)
        }
        if let output = outcome.outputTokens, output > 0 {
            Counter(label: MetricName.tokens, dimensions: labels(route + [("direction", "out")]), factory: factory).increment(by: output)
        }
    }

    /// Moves one tunnel from state `old` to state `new` in the per-state gauge (`old` is `nil` for a new tunnel).
    package func tunnelStateChanged(from old: String?, to new: String) {
        guard old != new else { return }
        if let old { Meter(label: MetricName.tunnels, dimensions: [("state", old)], factory: factory).decrement() }
        Meter(label: MetricName.tunnels, dimensions: [("state", new)], factory: factory).increment()
    }

    /// Counts an ssh start of a tunnel that had started before.
    package func tunnelRestarted() {
        Counter(label: MetricName.tunnelRestarts, factory: factory).increment()
    }

    /// Counts a Globus refresh: `failure` is `nil` on success, else `refused` or `transient`.
    package func grantRefreshed(failure: String?) {
        if let failure {
            Counter(label: MetricName.grantRefreshFailures, dimensions: [("reason", failure)], factory: factory).increment()
        } else {
            Counter(label: MetricName.grantRefreshes, factory: factory).increment()
        }
    }

    /// Sets the system-mode tenant gauges.
    package func tenants(enabled: Int, active: Int) {
        Gauge(label: MetricName.tenantsEnabled, factory: factory).record(enabled)
        Gauge(label: MetricName.tenantsActive, factory: factory).record(active)
    }
}

extension Duration {
    /// The duration in whole nanoseconds (saturating).
    package var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : scaled + attoseconds / 1_000_000_000
    }
}

/// The process's Prometheus registry, bootstrapped into swift-metrics once at daemon start.
package enum RosettaMetricsSystem {
    private static let installed = Mutex<PrometheusCollectorRegistry?>(nil)

    /// The latency buckets (seconds) of the two request histograms: LLM calls take from milliseconds to minutes.
    package static let latencyBuckets: [Duration] = [
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500),
        .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(120), .seconds(300),
    ]

    /// A factory writing into `registry` with rosettad's histogram buckets.
    package static func factory(registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = [MetricName.duration: latencyBuckets, MetricName.timeToFirstByte: latencyBuckets]
        return factory
    }

    /// Installs a Prometheus registry as swift-metrics' backend; later calls keep the first one.
    package static func bootstrap() {
        installed.withLock { registry in
            guard registry == nil else { return }
            let fresh = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(factory(registry: fresh))
            registry = fresh
        }
    }

    /// The text exposition (format 0.0.4) of every metric, or `nil` before `bootstrap()`.
    package static func exposition() -> [UInt8]? {
        installed.withLock { $0 }?.emitToBuffer()
    }

    /// The `content-type` of the exposition.
    package static let contentType = "text/plain; version=0.0.4; charset=utf-8"
}
