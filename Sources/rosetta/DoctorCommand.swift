import ArgumentParser
import ClientSetup
import Foundation
import Supervisor
import TenantGateway

#if canImport(Glibc)
import Glibc
#endif

extension Rosetta {
    /// Checks every link from this shell to the models and prints each problem with the command that fixes it.
    struct Doctor: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check your gateway link by link and print each problem with the command that fixes it.",
            discussion: """
                In order: the daemon answers on your socket (else why, and how to start or enable it), the socket is \
                yours with mode 0600 in a 0700 directory, the loopback port accepts your token, the token file holds \
                the daemon's token, no environment variable holds an older token, and each provider works (an Argo \
                tunnel up or its reason and command, an ALCF login valid or `rosetta login alcf`). Checks that need \
                the daemon are skipped when it does not answer. Exit status: 0 all passed, 1 a check failed, 2 only \
                warnings. See docs/troubleshooting.md.
                """)

        @OptionGroup var probeOptions: ProbeOptions

        @Flag(name: .long, help: "Plain ASCII marks (ok/WARN/FAIL/skip) even on a terminal; the default when not on one.")
        var ascii = false

        @Flag(name: .long, help: "Print the results as JSON: [{subject, outcome, detail, fix}], and the exit status.")
        var json = false

        func run() throws {
            let environment = ProcessInfo.processInfo.environment
            let facts = DoctorProbe(options: probeOptions, environment: environment).gather(probePort: true)
            let home = UserIdentity.current(environment: environment).home
            let report = DoctorReport(facts: facts, clientChecks: [Self.clientFiles(home: home, port: facts.port)])
            if json {
                let results: [JSON] = report.results.map { result in
                    ["subject": .string(result.subject), "outcome": .string(result.outcome.rawValue),
                     "detail": .string(result.detail), "fix": result.fix.map(JSON.string) ?? .null]
                }
                print((["results": .array(results), "exit_status": JSON(Int(report.exitStatus))] as JSON).text)
            } else {
                print(report.render(ascii: ascii || isatty(STDOUT_FILENO) == 0))
            }
            if report.exitStatus != 0 { throw ExitCode(report.exitStatus) }
        }

        /// The last check: each client set up with `rosetta setup` still points at this gateway (clients never set up are not listed).
        static func clientFiles(home: String, port: Int?) -> DoctorCheck {
            let results: [DoctorResult]
            if let port {
                results = ClientCatalog.withConfigFiles.compactMap { profile in
                    let path = profile.configPath(home: home) ?? profile.name
                    let subject = "\(profile.displayName) config"
                    switch profile.check(home: home, endpoint: ClientEndpoint(port: port)) {
                    case .ok:
                        return DoctorResult(subject, .ok, "\(path) points at this gateway")
                    case .notConfigured:
                        return nil
                    case .pointsElsewhere(let found):
                        return DoctorResult(subject, .fail, "\(path) does not point at this gateway: \(found)", fix: profile.fixCommand)
                    case .unreadable(let reason):
                        return DoctorResult(subject, .warn, "\(path) cannot be read: \(reason)", fix: profile.fixCommand)
                    }
                }
            } else {
                results = []
            }
            return DoctorCheck(name: "client configs", requirement: .daemon) { _ in results }
        }
    }
}
