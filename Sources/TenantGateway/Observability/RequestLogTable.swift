/// Renders request log records (as the log route returns them) as a readable table for `rosetta log`.
package enum RequestLogTable {
    /// The column headings.
    package static let headings = ["TIME", "REQUEST", "DIALECT", "MODEL", "UPSTREAM", "STATUS", "IN", "OUT", "MS", "ERROR"]

    /// One row's cells for a record; missing values show as `-`.
    package static func cells(_ record: JSON) -> [String] {
        func text(_ key: String) -> String {
            switch record[key] {
            case .string(let value)?: value
            case .number(let value)?: value
            case .bool(let value)?: String(value)
            default: "-"
            }
        }
        var time = text("time")
        // 2026-05-01T12:00:03.123Z → 2026-05-01 12:00:03
        if time.count >= 19 { time = String(time.prefix(19)).replacingFirstT() }
        var status = text("status")
        if record["stream"] == .bool(true) { status += "~" }
        var error = text("error_code")
        if error == "-" { error = text("error_class") }
        return [time, text("request_id"), text("dialect"), text("model"), text("upstream"), status, text("tokens_in"), text("tokens_out"), text("duration_ms"), error]
    }

    /// The table: headings, then one aligned row per record (a `~` after the status marks a stream).
    package static func render(_ records: [JSON], headings withHeadings: Bool = true) -> String {
        let rows = (withHeadings ? [headings] : []) + records.map(cells)
        guard !rows.isEmpty else { return "" }
        var widths = [Int](repeating: 0, count: headings.count)
        for row in rows { for (column, cell) in row.enumerated() { widths[column] = max(widths[column], cell.count) } }
        return rows.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[column] - cell.count)
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }
}

extension String {
    fileprivate func replacingFirstT() -> String {
        guard let index = firstIndex(of: "T") else { return self }
        var copy = self
        copy.replaceSubrange(index...index, with: " ")
        return copy
    }
}
