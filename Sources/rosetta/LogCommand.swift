import ArgumentParser
import Foundation
import Supervisor
import TenantGateway

extension Rosetta {
    /// Shows the user's request log (read through the daemon: in system mode the file is root's).
    struct Log: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show your gateway's request log: time, model, upstream, status, tokens, duration, error.",
            discussion: """
                Reads the log through your socket. --follow keeps printing new requests until interrupted. \
                --debug on makes the daemon log request and response bodies too (secrets redacted) until --debug off.
                """)

        @OptionGroup var socketOptions: SocketOptions

        @Option(name: .short, help: "How many of the latest requests to show.")
        var n: Int = 20

        @Flag(name: .long, help: "Keep printing new requests as they finish.")
        var follow = false

        @Flag(name: .long, help: "Print the raw JSON lines instead of a table.")
        var json = false

        @Option(name: .long, help: "Turn body logging on or off (on|off).")
        var debug: String?

        func validate() throws {
            guard n >= 0 else { throw ValidationError("-n must be 0 or more.") }
            if let debug, debug != "on", debug != "off" { throw ValidationError("--debug takes on or off.") }
        }

        func run() throws {
            let client = socketOptions.client
            if let debug {
                let answer = try call(client, method: "POST", path: "/rosetta/v1/log/debug", body: ["enabled": .bool(debug == "on")])
                print("request body logging is \(answer["debug"] == .bool(true) ? "on (secrets redacted)" : "off")")
                return
            }
            let answer = try call(client, method: "GET", path: "/rosetta/v1/log?lines=\(n)")
            var sequence = answer["sequence"]?.intValue ?? 0
            emit(answer["lines"]?.arrayValue ?? [], headings: true)
            guard follow else { return }
            while true {
                Thread.sleep(forTimeInterval: 1)
                let next = try call(client, method: "GET", path: "/rosetta/v1/log?after=\(sequence)")
                sequence = next["sequence"]?.intValue ?? sequence
                emit(next["lines"]?.arrayValue ?? [], headings: false)
            }
        }

        /// Writes straight to standard output (unbuffered), so `--follow` output reaches a pipe at once.
        private func emit(_ records: [JSON], headings: Bool) {
            var text = ""
            if json {
                for record in records { text += String(decoding: record.bytes, as: UTF8.self) + "\n" }
            } else if !records.isEmpty || headings {
                text = RequestLogTable.render(records, headings: headings)
            }
            if !text.isEmpty { FileHandle.standardOutput.write(Data(text.utf8)) }
        }
    }
}
