import ArgumentParser
import Foundation
import Supervisor
import TenantGateway

extension Rosetta {
    /// Shows the user's own gateway: mode, socket, port, token file, tunnels, logins, counters and models.
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show your gateway: mode, socket, port, token file, tunnels, logins, requests and models by provider.",
            discussion: """
                The token itself is never shown (`rosetta token` prints it). A tunnel or login that is not usable is \
                followed by the command to run. --json prints the daemon's status answer with the same additions, \
                for scripts. When the daemon does not answer, this exits 1; `rosetta doctor` says why.
                """)

        @OptionGroup var probeOptions: ProbeOptions

        @Flag(name: .long, help: "Print one JSON object (the daemon's status plus mode, socket_file, token_file, tunnels, providers).")
        var json = false

        func run() throws {
            let facts = DoctorProbe(options: probeOptions, environment: ProcessInfo.processInfo.environment).gather(probePort: false)
            guard let text = TenantStatusText.render(facts), let object = TenantStatusText.json(facts) else {
                let reason = DoctorCheck.daemon.evaluate(facts).first
                FileHandle.standardError.write(Data("rosetta: \(reason?.detail ?? "rosettad did not answer")\n".utf8))
                if let fix = reason?.fix { FileHandle.standardError.write(Data("  fix: \(fix)\n".utf8)) }
                throw ExitCode(1)
            }
            if json {
                print(object.text)
                return
            }
            print(text)
            if let error = facts.modelsError {
                print("models: could not be listed: \(error)")
                return
            }
            print("models")
            for provider in facts.models?["providers"]?.arrayValue ?? [] {
                print("  " + Models.header(provider))
                for model in provider["models"]?.arrayValue ?? [] { print("  " + Models.line(model)) }
            }
        }
    }
}
