/// Everything a simulated workspace is built from. Two workspaces with equal configurations
/// (and an explicit start time) hold the same batches with the same ids.
public struct SimulatorConfiguration: Sendable {
    /// How simulated time moves.
    public enum TimeMode: Sendable, Equatable {
        /// Time starts at `start` (the real wall-clock time when `nil`) and moves only when told
        /// to (`advance`), so tests decide exactly when things happen.
        case manual(start: Double? = nil)
        /// Simulated time is `start + real elapsed × speed`; with a speed of 60 a day of batch
        /// lifecycles passes in 24 minutes.
        case realtime(start: Double? = nil, speed: Double = 1)
    }

    /// What happens to a workspace on its own as time passes. The 24-hour expiry and the 29-day
    /// archiving are rules of the API and apply with or without dynamics.
    public struct Dynamics: Sendable, Equatable {
        /// New batches per simulated hour (a Poisson process); 0 for none.
        public var arrivalsPerHour: Double
        /// Share of new batches that run into the 24-hour expiry.
        public var expiringFraction: Double
        /// Share of new batches that the simulated user cancels while they run.
        public var canceledFraction: Double
        /// How long a canceling batch takes to end, in simulated seconds.
        public var cancelingDuration: ClosedRange<Double>

        public init(
            arrivalsPerHour: Double = 30,
            expiringFraction: Double = 0.04,
            canceledFraction: Double = 0.03,
            cancelingDuration: ClosedRange<Double> = 60...1200
        ) {
            self.arrivalsPerHour = arrivalsPerHour
            self.expiringFraction = expiringFraction
            self.canceledFraction = canceledFraction
            self.cancelingDuration = cancelingDuration
        }

        public static let standard = Dynamics()
    }

    /// The key clients must send in `x-api-key` (or as `Authorization: Bearer`).
    public var apiKey: String
    public var seed: UInt64
    /// Batches present at start, newest first.
    public var initialBatches: Int
    /// How many of the initial batches are `in_progress`; they are the newest ones.
    public var initialActive: Int
    public var time: TimeMode
    /// `nil` turns dynamics off: batches then change only through the control endpoints, the
    /// 24-hour expiry and archiving.
    public var dynamics: Dynamics?
    /// Serve at most this many batches per page whatever `limit` asks for, as a server that caps
    /// page sizes would; `nil` for no cap beyond the API's 1,000.
    public var maxPageSize: Int?
    /// Prefix of `results_url`.
    public var resultsBaseURL: String
    /// Leave `archived_at` out of the batch object while it is null, as some documented examples
    /// do, to check that clients treat a missing key as null.
    public var omitNullArchivedAt: Bool
    /// Send `anthropic-ratelimit-requests-{limit,remaining,reset}` headers as if this many
    /// requests per minute were allowed; `nil` sends none (whether the real batch endpoints
    /// send them is undocumented).
    public var rateLimitPerMinute: Int?

    public init(
        apiKey: String = "sk-ant-simulated",
        seed: UInt64 = 1,
        initialBatches: Int = 0,
        initialActive: Int = 0,
        time: TimeMode = .manual(),
        dynamics: Dynamics? = nil,
        maxPageSize: Int? = nil,
        resultsBaseURL: String = "https://api.anthropic.com",
        omitNullArchivedAt: Bool = false,
        rateLimitPerMinute: Int? = nil
    ) {
        self.rateLimitPerMinute = rateLimitPerMinute
        self.apiKey = apiKey
        self.seed = seed
        self.initialBatches = initialBatches
        self.initialActive = initialActive
        self.time = time
        self.dynamics = dynamics
        self.maxPageSize = maxPageSize
        self.resultsBaseURL = resultsBaseURL
        self.omitNullArchivedAt = omitNullArchivedAt
    }

    /// A lively workspace for `--demo`: a minute of real time is an hour of batch life.
    public static func demo(apiKey: String = "sk-ant-simulated", seed: UInt64 = 1) -> Self {
        SimulatorConfiguration(
            apiKey: apiKey,
            seed: seed,
            initialBatches: 300,
            initialActive: 12,
            time: .realtime(speed: 60),
            dynamics: .standard
        )
    }
}
