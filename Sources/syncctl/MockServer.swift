import ArgumentParser
import CollectionsMock
import Foundation
import SyncctlContract
import UnixSignals

struct MockServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mock-server",
        abstract: "Run the bundled mock Collections API until interrupted.",
        discussion: """
            Serves the Collections endpoints under /1.1/ on a local port: OAuth 1.0a
            signatures (and Bearer tokens) are verified against fixed test credentials,
            and rate-limit windows are kept. As soon as it listens it prints one line on
            stdout: the API base URL and the test credentials as KEY=value pairs named
            like syncctl's environment variables, or with --json one object with the
            keys api_base, consumer_key, consumer_secret, access_token,
            access_token_secret and bearer_token (and admin_base with --admin-port).
            It serves until SIGINT or SIGTERM, then shuts down and exits 0.

            Tests in any language script it through JSON admin routes under /__mock/
            (GET /__mock/ lists them): seed, reset and read the state, read the
            journal of requests, and inject faults (POST /__mock/faults with
            fail_next, rate_limit_until, latency_ms, blackhole, drop_after_apply,
            reset, reset_after_apply, malformed_next, truncated_next or
            clock_offset_s). POST /__mock/outage
            {"seconds":N} refuses connections for N seconds. With --admin-port the
            admin routes are also served on a second port that stays up during an
            outage.

            Examples:
              syncctl mock-server
              syncctl mock-server --port 8080 --json
              syncctl mock-server --json > mock.json &   # then: jq -r .api_base mock.json
              curl -s localhost:8080/__mock/journal
              curl -s -X POST localhost:8080/__mock/faults \\
                -d '{"fail_next":{"count":3,"status":503,"code":130}}'
            """)

    @Option(name: .long, help: ArgumentHelp("The address to listen on.", valueName: "host"))
    var host = "127.0.0.1"

    @Option(name: .long, help: ArgumentHelp("The API port; 0 picks a free one.", valueName: "port"))
    var port = 0

    @Option(name: .long, help: ArgumentHelp("Also serve the admin routes on this port, which stays up during an outage (0 picks a free one).", valueName: "port"))
    var adminPort: Int?

    @OptionGroup var options: OutputOptions

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
        if let adminPort, !(0...65535).contains(adminPort) { throw ValidationError("--admin-port must be between 0 and 65535") }
        guard !host.isEmpty else { throw ValidationError("--host needs an address") }
    }

    func run() async throws {
        // Signals first, so that one arriving right after the line is printed is not lost.
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)

        var configuration = MockConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.adminPort = adminPort
        let server: MockCollectionsServer
        do {
            server = try await MockCollectionsServer.start(configuration: configuration)
        } catch {
            throw Failure(exitCode: Exit.unavailable, message: "cannot listen on \(host):\(port): \(error)")
        }

        let credentials = server.credentials
        if options.json {
            var members: [(String, JSON)] = [
                ("api_base", .string(server.baseURL)),
                ("consumer_key", .string(credentials.consumerKey)),
                ("consumer_secret", .string(credentials.consumerSecret)),
                ("access_token", .string(credentials.accessToken)),
                ("access_token_secret", .string(credentials.accessTokenSecret)),
                ("bearer_token", .optional(credentials.bearerToken)),
            ]
            if adminPort != nil { members.append(("admin_base", .string(server.adminURL))) }
            Console.shared.out(JSON.object(members).text)
        } else {
            // KEY=value pairs named like the environment variables syncctl reads.
            Console.shared.out("SYNCCTL_API_BASE=\(server.baseURL) TWITTER_CONSUMER_KEY=\(credentials.consumerKey) "
                + "TWITTER_CONSUMER_SECRET=\(credentials.consumerSecret) TWITTER_ACCESS_TOKEN=\(credentials.accessToken) "
                + "TWITTER_ACCESS_TOKEN_SECRET=\(credentials.accessTokenSecret) TWITTER_BEARER_TOKEN=\(credentials.bearerToken ?? "")")
        }
        tell("mock Collections API at \(server.baseURL), admin routes at \(server.adminURL); stop with Ctrl-C")

        var waiting = signals.makeAsyncIterator()
        let received = await waiting.next()
        tell("\(received?.description ?? "end of signals"): shutting down the mock server")
        await server.shutdown()
    }
}
