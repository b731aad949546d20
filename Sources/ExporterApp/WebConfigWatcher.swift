import Basics
import BatchesAPI
import ConfigFiles
import HTTPServing
import Logging
import MetricsServer
import NIOCore
import NIOSSL
import Synchronization

/// Follows `--web.config.file` while the exporter runs, as exporter-toolkit does: the file and
/// the certificate, key and client CA files it names are stat'ed at most once per
/// `checkInterval`, when a connection opens or a request needs basic auth, and reloaded when
/// one of them changed. Renewed certificates (cert-manager, a rotated Secret) and changed
/// `basic_auth_users` take effect without a restart; connections already open keep what they
/// negotiated. A file that does not load keeps the running configuration and is logged once
/// (again only when it changes). Turning TLS on or off needs a restart: a listener's scheme
/// is what its scrapers are configured for.
final class WebConfigWatcher: Sendable {
    /// One loaded version of the files.
    struct Loaded: Sendable {
        var config: WebConfig
        var tls: NIOSSLContext?
        /// Basic auth in front of the routes; `nil` when the file lists no users.
        var auth: BasicAuthResponder?
    }

    private struct State {
        var loaded: Loaded
        /// The stamps of the files `loaded` came from, by path.
        var stamps: [String: FileStamp?]
        /// The stamps of the files the last failed load saw, so it is reported once.
        var failedStamps: [String: FileStamp?]?
        var lastCheck: ContinuousClock.Instant
    }

    let path: String
    private let inner: any HTTPResponder
    private let checkInterval: Duration
    /// Times the checks; injected so a test moves it instead of waiting out the interval.
    private let clock: MonotonicClock
    private let logger: Logger
    private let state: Mutex<State>

    /// - Parameters:
    ///   - config, tls: the configuration already loaded and checked at start.
    ///   - inner: the routes that basic auth protects.
    init(
        path: String, config: WebConfig, tls: NIOSSLContext?, inner: any HTTPResponder, checkInterval: Duration = .seconds(2),
        clock: MonotonicClock = .continuous, logger: Logger
    ) {
        self.path = path
        self.inner = inner
        self.checkInterval = checkInterval
        self.clock = clock
        self.logger = logger
        let loaded = Loaded(config: config, tls: tls, auth: Self.auth(config, inner: inner))
        state = Mutex(State(loaded: loaded, stamps: Self.stamps(path, config), lastCheck: clock.now))
    }

    /// The configuration in force, reloaded first if the interval has passed and a file changed.
    var current: Loaded {
        state.withLock { state in
            let now = clock.now
            if now - state.lastCheck >= checkInterval {
                state.lastCheck = now
                reloadIfChanged(&state)
            }
            return state.loaded
        }
    }

    /// The TLS context for a new connection. Only used when TLS was on at start.
    func tlsContext(fallback: NIOSSLContext) -> NIOSSLContext {
        current.tls ?? fallback
    }

    /// Runs under the lock: a reload parses a small YAML file and maybe builds a TLS context,
    /// a few milliseconds once per change; every other call only stats the files.
    private func reloadIfChanged(_ state: inout State) {
        // The web config file first: it may name other certificate files.
        let configStamp = FileStamp.of(path)
        var candidate = state.loaded.config
        var stamps = state.stamps
        if configStamp != stamps[path] ?? nil {
            // Still the version that did not parse: nothing new to report.
            if state.failedStamps == [path: configStamp] { return }
            do {
                candidate = try ExporterSettings.webConfig(path)
            } catch {
                fail(&state, stamps: [path: configStamp], problem: error.description)
                return
            }
        }
        stamps = Self.stamps(path, candidate)
        guard stamps != state.stamps else { return }
        guard stamps != state.failedStamps else { return }
        guard (candidate.tls == nil) == (state.loaded.config.tls == nil) else {
            fail(
                &state, stamps: stamps,
                problem: "tls_server_config was \(state.loaded.config.tls == nil ? "added" : "removed"); turning TLS on or off needs a restart")
            return
        }
        var tls: NIOSSLContext?
        if let settings = candidate.tls {
            do {
                tls = try ExporterSettings.tlsContext(settings)
            } catch {
                fail(&state, stamps: stamps, problem: error.description)
                return
            }
        }
        let usersChanged = candidate.basicAuthUsers != state.loaded.config.basicAuthUsers
        state.loaded = Loaded(
            config: candidate, tls: tls,
            // A new responder starts with an empty cache of verified passwords: a removed user
            // or a changed password is refused from now on.
            auth: usersChanged ? Self.auth(candidate, inner: inner) : state.loaded.auth
        )
        state.stamps = stamps
        state.failedStamps = nil
        logger.info(
            "Web configuration reloaded",
            metadata: ["path": "\(path)", "tls": "\(candidate.tls != nil)", "basic_auth_users": "\(candidate.basicAuthUsers.count)"]
        )
    }

    private func fail(_ state: inout State, stamps: [String: FileStamp?], problem: String) {
        guard state.failedStamps != stamps else { return }
        state.failedStamps = stamps
        logger.error("Web configuration not reloaded; keeping the running one", metadata: ["path": "\(path)", "problem": "\(problem)"])
    }

    private static func auth(_ config: WebConfig, inner: any HTTPResponder) -> BasicAuthResponder? {
        config.basicAuthUsers.isEmpty ? nil : BasicAuthResponder(wrapping: inner, users: config.basicAuthUsers)
    }

    /// The files a configuration depends on, with their stamps now.
    private static func stamps(_ path: String, _ config: WebConfig) -> [String: FileStamp?] {
        var paths = [path]
        if let tls = config.tls {
            paths += [tls.certFile, tls.keyFile] + (tls.clientCAFile.map { [$0] } ?? [])
        }
        return Dictionary(paths.map { ($0, FileStamp.of($0)) }, uniquingKeysWith: { first, _ in first })
    }
}

/// Basic auth as the web config says now: the users of the last good version of the file,
/// or none.
struct ReloadingBasicAuth: HTTPResponder {
    let inner: any HTTPResponder
    let watcher: WebConfigWatcher

    func respond(to request: ServerRequest) -> ServerResponse {
        (watcher.current.auth ?? inner).respond(to: request)
    }

    func respond(to request: ServerRequest, on eventLoop: any EventLoop) -> EventLoopFuture<ServerResponse> {
        (watcher.current.auth.map { $0 as any HTTPResponder } ?? inner).respond(to: request, on: eventLoop)
    }
}
