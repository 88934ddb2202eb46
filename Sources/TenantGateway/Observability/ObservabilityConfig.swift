import Yams

/// The request log's settings (`request_log:` in the config).
package struct RequestLogSettings: Sendable, Equatable {
    /// The size at which `requests.log` is rotated to `requests.log.1`.
    package var maxBytes: Int = 10 * 1024 * 1024
    /// How many rotated files (`requests.log.1` … `.N`) are kept.
    package var keep: Int = 3
    /// Whether requests are logged at all.
    package var enabled = true

    /// The defaults: 10 MB, three rotated files.
    package init(maxBytes: Int = 10 * 1024 * 1024, keep: Int = 3, enabled: Bool = true) {
        self.maxBytes = maxBytes
        self.keep = keep
        self.enabled = enabled
    }
}

/// The metrics settings (`metrics:` in the config).
package struct MetricsSettings: Sendable, Equatable {
    /// Whether request metrics carry a `tenant` label (the account's login name); off by default.
    package var perTenantLabels = false
    /// The loopback `127.0.0.1:port` on which `/metrics` is also served for a scraper; `nil` for none.
    package var listen: (host: String, port: Int)?

    /// The defaults: no tenant label, no scrape port.
    package init(perTenantLabels: Bool = false, listen: (host: String, port: Int)? = nil) {
        self.perTenantLabels = perTenantLabels
        self.listen = listen
    }

    /// Equal when both settings and the scrape endpoint match.
    package static func == (lhs: MetricsSettings, rhs: MetricsSettings) -> Bool {
        lhs.perTenantLabels == rhs.perTenantLabels && lhs.listen?.host == rhs.listen?.host && lhs.listen?.port == rhs.listen?.port
    }
}

/// What the config says about observability: the request log and the metrics.
package struct ObservabilityConfig: Sendable, Equatable {
    /// `request_log:`.
    package var requestLog = RequestLogSettings()
    /// `metrics:`.
    package var metrics = MetricsSettings()

    /// The defaults.
    package init() {}
}

extension ConfigReader {
    /// Reads `request_log:` and `metrics:` from the top-level mapping, when present.
    func readObservability(_ top: [(Node, Node)]) throws(ConfigError) -> ObservabilityConfig {
        var settings = ObservabilityConfig()
        if let node = value(top, "request_log") {
            let map = try mapping(node, "request_log")
            try rejectUnknownKeys(map, allowed: ["max_bytes", "keep", "enabled"], in: "request_log")
            if let node = value(map, "max_bytes") { settings.requestLog.maxBytes = try byteSize(node) }
            if let node = value(map, "keep") { settings.requestLog.keep = try nonNegativeInt(node) }
            if let node = value(map, "enabled") { settings.requestLog.enabled = try boolean(node) }
        }
        if let node = value(top, "metrics") {
            let map = try mapping(node, "metrics")
            try rejectUnknownKeys(map, allowed: ["per_tenant_labels", "listen"], in: "metrics")
            if let node = value(map, "per_tenant_labels") { settings.metrics.perTenantLabels = try boolean(node) }
            if let node = value(map, "listen") {
                let text = try string(node)
                guard let listen = Self.loopbackEndpoint(text) else {
                    throw error("invalid_value", "metrics.listen must be 127.0.0.1:<port> (or localhost:<port>), found '\(text)'", at: node)
                }
                settings.metrics.listen = listen
            }
        }
        return settings
    }

    /// A size such as `10485760`, `10MB`, `512KB`, `1GB` (powers of 1024).
    func byteSize(_ node: Node) throws(ConfigError) -> Int {
        let text = try string(node).trimmingSpaces
        guard let size = ObservabilityConfig.parseByteSize(text) else {
            throw error("invalid_value", "expected a size such as 10MB, 512KB or a number of bytes (at least 1024), found '\(text)'", at: node)
        }
        return size
    }

    func boolean(_ node: Node) throws(ConfigError) -> Bool {
        let text = try string(node)
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw error("invalid_value", "expected true or false, found '\(text)'", at: node)
        }
    }

    /// `127.0.0.1:9464` or `localhost:9464`; any other host is refused (metrics are for a local scraper).
    static func loopbackEndpoint(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else {
            return nil
        }
        let host = String(text[..<colon])
        guard host == "127.0.0.1" || host == "localhost" else { return nil }
        return ("127.0.0.1", port)
    }
}

extension ObservabilityConfig {
    /// Parses `10MB`, `512KB`, `1GB`, `4096` (KB/MB/GB are powers of 1024; at least 1024 bytes).
    package static func parseByteSize(_ text: String) -> Int? {
        let upper = text.uppercased()
        let units: [(String, Int)] = [("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10), ("B", 1)]
        var multiplier = 1
        var digits = Substring(upper)
        for (suffix, factor) in units where upper.hasSuffix(suffix) {
            multiplier = factor
            digits = upper.dropLast(suffix.count)
            break
        }
        guard let number = Int(digits.trimmingSpaces), number > 0 else { return nil }
        let (size, overflow) = number.multipliedReportingOverflow(by: multiplier)
        return overflow || size < 1024 ? nil : size
    }
}

extension StringProtocol {
    fileprivate var trimmingSpaces: String {
        var text = Substring(self)
        while text.first == " " || text.first == "\t" { text = text.dropFirst() }
        while text.last == " " || text.last == "\t" { text = text.dropLast() }
        return String(text)
    }
}
