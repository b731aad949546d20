// The simulator as its own process, for integration tests and benchmarks. Flags are parsed by
// hand so that a bad one costs exactly one line on stderr and exit status 2, which is what the
// integration tests check; stdout carries only the "listening on" line.

import BatchesSimulator
import Dispatch
import HTTPServing
import LogFormats
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

let usage = """
    usage: batches-simulator [options]

      --listen-address HOST:PORT   address to bind (default 127.0.0.1:0, an ephemeral port)
      --batches N                  batches present at start (default 100)
      --active N                   how many of them are in progress, the newest (default 5)
      --seed N                     seed for ids and lifecycles (default 1)
      --time manual|realtime       manual: time moves only via POST /_sim/advance (default);
                                   realtime: simulated time follows the wall clock
      --speed X                    simulated seconds per real second in realtime mode (default 1)
      --dynamics, --no-dynamics    batches arrive, end and get canceled on their own
                                   (default: on with --time realtime, off with manual)
      --arrivals-per-hour X        new batches per simulated hour with dynamics (default 30)
      --max-page-size N            serve at most N batches per page whatever limit asks
      --omit-null-archived-at      leave archived_at out of batch objects while it is null
      --ratelimit-headers N        send anthropic-ratelimit-requests-* headers for N per minute
      --results-base-url URL       prefix of results_url (default: this simulator's own
                                   http(s)://HOST:PORT, so clients can follow it)
      --tls-cert FILE --tls-key FILE   serve HTTPS with this PEM certificate and key

    API: GET /v1/messages/batches, /v1/messages/batches/{id}, /v1/messages/batches/{id}/results
    (JSON Lines, streamed chunked; 404 not_found_error while the batch has not ended and once
    it is archived: the real API's answer there is unconfirmed).

    Control (no auth; parameters in the query string):
      POST /_sim/batches?count=&requests=&status=&succeeded=&errored=&canceled=&expired=&age_seconds=
      GET|DELETE /_sim/batches/{id}    POST /_sim/batches/{id}/end|cancel    POST /_sim/advance?seconds=
      GET|POST|DELETE /_sim/faults?kind=status|spend_cap|html|garbage|wrong_types|truncated|delay|
                      hang|close|endless_cursor|wrong_content_type&count=   (next list requests)
      GET|POST|DELETE /_sim/batches/{id}/results?text_bytes=N&long_line_bytes=N&long_line_every=K
                      &base_url=URL   one batch's results: every succeeded line N bytes of text
                      (large-file mode: 100000 requests x text_bytes=10240 is over 1 GB), every
                      K-th line a long one, results_url on another host or port (base_url)
      GET|POST|DELETE /_sim/results-faults?kind=cut&after_bytes=N | kind=not_found |
                      kind=slow&delay_ms=N&piece_bytes=N  &count=   (next results downloads)
      GET /_sim/results-truth[?batch_id=]   exact totals over downloadable results: lines by
                      type, errored by type, tokens by model and type, stop reasons, web searches,
                      bytes (generated, not parsed)
      GET /_sim/truth[?batches=1]   GET|DELETE /_sim/requests   POST /_sim/reset?seed=&batches=&active=

    The API key is read from SIMULATOR_API_KEY (default sk-ant-simulated).
    Prints "listening on HOST:PORT" on stdout once bound; stops on SIGTERM or SIGINT.

    """

struct Options {
    var host = "127.0.0.1"
    var port = 0
    var batches = 100
    var active = 5
    var seed: UInt64 = 1
    var realtime = false
    var speed: Double?
    var dynamics: Bool?
    var arrivalsPerHour: Double?
    var maxPageSize: Int?
    var omitNullArchivedAt = false
    var rateLimitPerMinute: Int?
    var tlsCertificate: String?
    var tlsKey: String?
    var resultsBaseURL: String?
    var help = false
}

struct UsageError: Error {
    var message: String
}

func parseOptions(_ arguments: [String]) throws(UsageError) -> Options {
    var options = Options()
    var remaining = arguments[...]
    while let argument = remaining.popFirst() {
        var name = argument
        var inlineValue: String?
        if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
            name = String(argument[..<equals])
            inlineValue = String(argument[argument.index(after: equals)...])
        }
        func value() throws(UsageError) -> String {
            if let inlineValue { return inlineValue }
            guard let next = remaining.popFirst() else { throw UsageError(message: "\(name) needs a value") }
            return next
        }
        func integer(in range: ClosedRange<Int>) throws(UsageError) -> Int {
            let text = try value()
            guard let number = Int(text), range.contains(number) else {
                throw UsageError(
                    message: "\(name): expected an integer in \(range.lowerBound)...\(range.upperBound), got '\(text)'")
            }
            return number
        }
        func positive() throws(UsageError) -> Double {
            let text = try value()
            guard let number = Double(text), number.isFinite, number > 0 else {
                throw UsageError(message: "\(name): expected a positive number, got '\(text)'")
            }
            return number
        }
        func flag() throws(UsageError) {
            guard inlineValue == nil else { throw UsageError(message: "\(name) takes no value") }
        }

        switch name {
        case "--listen-address":
            let text = try value()
            do {
                let address = try ListenAddress.parse(text)
                (options.host, options.port) = (address.host, address.port)
            } catch {
                throw UsageError(message: "--listen-address \(error)")
            }
        case "--batches":
            options.batches = try integer(in: 0...10_000_000)
        case "--active":
            options.active = try integer(in: 0...10_000_000)
        case "--seed":
            let text = try value()
            guard let seed = UInt64(text) else {
                throw UsageError(message: "--seed: expected an unsigned integer, got '\(text)'")
            }
            options.seed = seed
        case "--time":
            switch try value() {
            case "manual": options.realtime = false
            case "realtime": options.realtime = true
            case let other: throw UsageError(message: "--time: expected manual or realtime, got '\(other)'")
            }
        case "--speed":
            options.speed = try positive()
        case "--dynamics":
            try flag()
            options.dynamics = true
        case "--no-dynamics":
            try flag()
            options.dynamics = false
        case "--arrivals-per-hour":
            let text = try value()
            guard let rate = Double(text), rate.isFinite, rate >= 0 else {
                throw UsageError(message: "--arrivals-per-hour: expected a number >= 0, got '\(text)'")
            }
            options.arrivalsPerHour = rate
        case "--max-page-size":
            options.maxPageSize = try integer(in: 1...1000)
        case "--ratelimit-headers":
            options.rateLimitPerMinute = try integer(in: 1...1_000_000)
        case "--tls-cert":
            options.tlsCertificate = try value()
        case "--tls-key":
            options.tlsKey = try value()
        case "--results-base-url":
            let url = try value()
            guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
                throw UsageError(message: "--results-base-url: expected an http:// or https:// URL, got '\(url)'")
            }
            options.resultsBaseURL = url.hasSuffix("/") ? String(url.dropLast()) : url
        case "--omit-null-archived-at":
            try flag()
            options.omitNullArchivedAt = true
        case "--help", "-h":
            options.help = true
        default:
            throw UsageError(message: "unknown argument '\(argument)' (see --help)")
        }
    }
    guard options.active <= options.batches else {
        throw UsageError(message: "--active (\(options.active)) must not exceed --batches (\(options.batches))")
    }
    if options.speed != nil, !options.realtime {
        throw UsageError(message: "--speed needs --time realtime")
    }
    return options
}

/// Unbuffered, so the line is out before anyone waits for it; C's `stdout` is a mutable global
/// that Swift 6 will not touch from async code.
func writeLine(_ text: String, to descriptor: Int32) {
    var bytes = Array((text + "\n").utf8)[...]
    while !bytes.isEmpty {
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard written > 0 else { return }
        bytes = bytes.dropFirst(written)
    }
}

/// A stream of SIGTERM and SIGINT, and the sources that feed it (keep them alive). A function of
/// its own so that the handler is not main-actor isolated: Dispatch calls it on its own queue.
func shutdownSignals() -> (AsyncStream<Int32>, [any DispatchSourceSignal]) {
    let (stream, continuation) = AsyncStream.makeStream(of: Int32.self)
    let queue = DispatchQueue(label: "batches-simulator.signals")
    let sources = [SIGTERM, SIGINT].map { number in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
        source.setEventHandler { continuation.yield(number) }
        source.resume()
        return source
    }
    return (stream, sources)
}

let options: Options
do {
    options = try parseOptions(Array(CommandLine.arguments.dropFirst()))
} catch {
    writeLine("batches-simulator: \(error.message)", to: STDERR_FILENO)
    exit(2)
}
if options.help {
    writeLine(usage, to: STDOUT_FILENO)
    exit(0)
}

LoggingSystem.bootstrap { StructuredLogHandler(label: $0, format: .logfmt, level: .info) }
let logger = Logger(label: "batches-simulator")

let apiKey =
    getenv("SIMULATOR_API_KEY").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "sk-ant-simulated"
var dynamics: SimulatorConfiguration.Dynamics?
if options.dynamics ?? options.realtime {
    dynamics = .standard
    if let rate = options.arrivalsPerHour { dynamics?.arrivalsPerHour = rate }
}
let workspace = SimulatedWorkspace(
    configuration: SimulatorConfiguration(
        apiKey: apiKey,
        seed: options.seed,
        initialBatches: options.batches,
        initialActive: options.active,
        time: options.realtime ? .realtime(speed: options.speed ?? 1) : .manual(),
        dynamics: dynamics,
        maxPageSize: options.maxPageSize,
        omitNullArchivedAt: options.omitNullArchivedAt,
        rateLimitPerMinute: options.rateLimitPerMinute
    )
)

// Signals are turned into a stream before the server starts, so an early SIGTERM still ends
// in an orderly shutdown rather than the default abrupt exit.
let (signals, signalSources) = shutdownSignals()

var serverConfiguration = HTTPServerConfiguration(host: options.host, port: options.port)
if options.tlsCertificate != nil || options.tlsKey != nil {
    guard let certificate = options.tlsCertificate, let key = options.tlsKey else {
        writeLine("batches-simulator: --tls-cert and --tls-key go together", to: STDERR_FILENO)
        exit(2)
    }
    do {
        serverConfiguration.tls = try ListenerTLS.makeContext(certFile: certificate, keyFile: key, minVersion: nil, clientCAFile: nil)
    } catch {
        writeLine("batches-simulator: \(error)", to: STDERR_FILENO)
        exit(2)
    }
}
let server = HTTPServer(
    configuration: serverConfiguration,
    responder: SimulatorResponder(workspace: workspace),
    logger: logger
)
let port: Int
do {
    port = try await server.start()
} catch {
    writeLine("batches-simulator: cannot listen on \(options.host):\(options.port): \(error)", to: STDERR_FILENO)
    exit(1)
}
let shownHost = options.host.contains(":") ? "[\(options.host)]" : options.host
// results_url points back here unless told otherwise; a wildcard bind is reached via loopback.
let reachableHost =
    switch options.host {
    case "0.0.0.0": "127.0.0.1"
    case "::": "[::1]"
    default: shownHost
    }
workspace.resultsBaseURL =
    options.resultsBaseURL ?? "\(serverConfiguration.tls == nil ? "http" : "https")://\(reachableHost):\(port)"
writeLine("listening on \(shownHost):\(port)", to: STDOUT_FILENO)
logger.info(
    "simulator started",
    metadata: [
        "batches": "\(options.batches)", "active": "\(options.active)", "seed": "\(options.seed)",
        "time": "\(options.realtime ? "realtime" : "manual")", "dynamics": "\(dynamics != nil)",
    ]
)

for await number in signals {
    logger.info("shutting down", metadata: ["signal": "\(number)"])
    break
}
await server.shutdown()
for source in signalSources {
    source.cancel()
}
