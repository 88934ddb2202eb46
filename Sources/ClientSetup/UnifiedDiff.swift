/// A line-based unified diff, as `diff -u` prints it, for `rosetta setup --dry-run`.
package enum UnifiedDiff {
    /// The diff from `before` to `after` with three lines of context; empty when they are equal.
    package static func make(before: String, after: String, fromName: String, toName: String, context: Int = 3) -> String {
        let old = lines(before)
        let new = lines(after)
        if old == new { return "" }
        let script = editScript(old, new)
        var output = "--- \(fromName)\n+++ \(toName)\n"
        // Group edits into hunks with `context` lines around each change.
        var index = 0
        while index < script.count {
            guard script[index].kind != .same else { index += 1; continue }
            var start = index
            var contextBefore = 0
            while start > 0, contextBefore < context, script[start - 1].kind == .same { start -= 1; contextBefore += 1 }
            var end = index
            while end < script.count {
                if script[end].kind != .same { end += 1; continue }
                var run = end
                while run < script.count, script[run].kind == .same { run += 1 }
                if run == script.count || run - end > 2 * context {
                    end = min(end + context, run)
                    break
                }
                end = run
            }
            let hunk = script[start..<end]
            let oldStart = hunk.first?.oldIndex ?? 0
            let newStart = hunk.first?.newIndex ?? 0
            let oldCount = hunk.filter { $0.kind != .added }.count
            let newCount = hunk.filter { $0.kind != .removed }.count
            output += "@@ -\(range(oldStart, oldCount)) +\(range(newStart, newCount)) @@\n"
            for edit in hunk {
                switch edit.kind {
                case .same: output += " " + edit.text + "\n"
                case .removed: output += "-" + edit.text + "\n"
                case .added: output += "+" + edit.text + "\n"
                }
            }
            index = end
        }
        return output
    }

    private static func range(_ start: Int, _ count: Int) -> String {
        count == 0 ? "\(start),0" : (count == 1 ? "\(start + 1)" : "\(start + 1),\(count)")
    }

    private static func lines(_ text: String) -> [String] {
        var result = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if result.last == "" { result.removeLast() }
        return result
    }

    private enum Kind { case same, removed, added }

    private struct Edit {
        var kind: Kind
        var text: String
        var oldIndex: Int
        var newIndex: Int
    }

    /// A longest-common-subsequence edit script (config files are small, so O(n·m) is fine).
    private static func editScript(_ old: [String], _ new: [String]) -> [Edit] {
        let rows = old.count + 1
        let columns = new.count + 1
        var lengths = [Int](repeating: 0, count: rows * columns)
        for i in stride(from: old.count - 1, through: 0, by: -1) {
            for j in stride(from: new.count - 1, through: 0, by: -1) {
                lengths[i * columns + j] = old[i] == new[j]
                    ? lengths[(i + 1) * columns + j + 1] + 1
                    : max(lengths[(i + 1) * columns + j], lengths[i * columns + j + 1])
            }
        }
        var script: [Edit] = []
        var i = 0
        var j = 0
        while i < old.count || j < new.count {
            if i < old.count, j < new.count, old[i] == new[j] {
                script.append(Edit(kind: .same, text: old[i], oldIndex: i, newIndex: j))
                i += 1; j += 1
            } else if i < old.count, j == new.count || lengths[(i + 1) * columns + j] >= lengths[i * columns + j + 1] {
                script.append(Edit(kind: .removed, text: old[i], oldIndex: i, newIndex: j))
                i += 1
            } else {
                script.append(Edit(kind: .added, text: new[j], oldIndex: i, newIndex: j))
                j += 1
            }
        }
        return script
    }
}
