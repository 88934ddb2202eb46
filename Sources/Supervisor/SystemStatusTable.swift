#if canImport(Glibc)
import Glibc
#endif
import TenantGateway

/// Renders the control socket's status report as the table `rosettad status` prints.
package enum SystemStatusTable {
    /// The default control socket path clients use.
    package static let defaultControlSocket = "/run/rosettad/control.sock"

    /// The report as text: a daemon summary, then one row per tenant.
    package static func render(_ report: JSON, now: Int = Int(time(nil))) -> String {
        let daemon = report["daemon"]
        var lines = [
            "rosettad \(daemon?["version"]?.stringValue ?? "?")  pid \(daemon?["pid"]?.intValue.map(String.init) ?? "?")"
                + "  up \(duration(daemon?["uptime_seconds"]?.intValue ?? 0))",
            "config \(daemon?["config"]?.stringValue ?? "?")  control \(daemon?["control_socket"]?.stringValue ?? "?")",
            "last reload " + lastReload(daemon?["last_reload"], now: now),
            "",
        ]
        let header = ["USER", "UID", "STATE", "PORT", "REQUESTS", "ERRORS", "IN FLIGHT", "LAST USED", "TUNNELS", "GRANTS", "SOCKET"]
        var rows = [header]
        if case .array(let tenants)? = report["tenants"] {
            for tenant in tenants {
                let lastUsed = tenant["last_used"]?.intValue.map { duration(now - $0) + " ago" } ?? "never"
                rows.append([
                    tenant["user"]?.stringValue ?? "?",
                    tenant["uid"]?.intValue.map(String.init) ?? "?",
                    tenant["state"]?.stringValue ?? "?",
                    tenant["port"]?.intValue.map(String.init) ?? "-",
                    tenant["requests"]?.intValue.map(String.init) ?? "0",
                    tenant["errors"]?.intValue.map(String.init) ?? "0",
                    tenant["in_flight"]?.intValue.map(String.init) ?? "0",
                    lastUsed,
                    summary(tenant["tunnels"]) { $0["state"]?.stringValue ?? "?" },
                    summary(tenant["grants"]) { grant in
                        let state = grant["state"]?.stringValue ?? "?"
                        guard let expiry = grant["expires_at"]?.stringValue else { return state }
                        return "\(state) until \(expiry)"
                    },
                    tenant["socket"]?.stringValue ?? "-",
                ])
                if let error = tenant["error"]?.stringValue { rows.append(["", "", "error: " + error] + Array(repeating: "", count: header.count - 3)) }
            }
        }
        if rows.count == 1 { lines.append("no tenants enabled (users run `rosetta enable`)"); return lines.joined(separator: "\n") }
        var widths = [Int](repeating: 0, count: header.count)
        for row in rows where !row[0].isEmpty || row[2].hasPrefix("error") == false {
            for (index, cell) in row.enumerated() where index < header.count - 1 { widths[index] = max(widths[index], cell.count) }
        }
        for row in rows {
            if row[0].isEmpty { lines.append("    " + row[2]); continue }
            lines.append(row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - cell.count)
            }.joined(separator: "  "))
        }
        return lines.joined(separator: "\n")
    }

    /// `name=value` for each member of a tenant's `tunnels` or `grants` object, or `-` when there are none.
    static func summary(_ members: JSON?, _ value: (JSON) -> String) -> String {
        guard case .object(let object)? = members, !object.isEmpty else { return "-" }
        return object.map { name, member in "\(name)=\(value(member))" }.joined(separator: ",")
    }

    /// `never`, `5m ago: applied`, or `5m ago: refused (file:line: reason)`.
    static func lastReload(_ record: JSON?, now: Int) -> String {
        guard let record, let at = record["at"]?.intValue else { return "never" }
        let result = record["result"]?.stringValue ?? "?"
        let error = record["error"]?.stringValue.map { " (\($0))" } ?? ""
        return "\(duration(now - at)) ago: \(result)\(error)"
    }

    /// A short human duration: `42s`, `5m`, `3h12m`, `2d4h`.
    package static func duration(_ seconds: Int) -> String {
        let seconds = max(seconds, 0)
        if seconds < 60 { return "\(seconds)s" }
        if seconds < 3600 { return "\(seconds / 60)m" }
        if seconds < 86400 { return "\(seconds / 3600)h\(seconds % 3600 / 60)m" }
        return "\(seconds / 86400)d\(seconds % 86400 / 3600)h"
    }
}
