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
    /// Batches placed in the workspace at start with their whole story written down, on top of
    /// the seeded ones: what `--demo` uses to show each situation the shipped alerts exist for.
    public var scriptedBatches: [ScriptedBatch]

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
        rateLimitPerMinute: Int? = nil,
        scriptedBatches: [ScriptedBatch] = []
    ) {
        self.scriptedBatches = scriptedBatches
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

    /// A lively workspace for `--demo`: a minute of real time is an hour of batch life, and
    /// within its first minutes it shows every situation the shipped alerts exist for (see
    /// ``demoScenario(speed:)``).
    public static func demo(apiKey: String = "sk-ant-simulated", seed: UInt64 = 1, speed: Double = 60) -> Self {
        SimulatorConfiguration(
            apiKey: apiKey,
            seed: seed,
            initialBatches: 300,
            initialActive: 12,
            time: .realtime(speed: speed),
            dynamics: .standard,
            scriptedBatches: demoScenario(speed: speed)
        )
    }

    /// The demo's scripted batches. Times are relative to the start, which in the demo is the
    /// wall-clock time, so the start is where simulated and real time agree; after it simulated
    /// time runs `speed` times faster.
    ///
    /// - Requests expired: two batches reach their 24-hour limit 90 and 240 simulated minutes
    ///   after the start (1.5 and 4 real minutes at 60x).
    /// - Errored share: a failing nightly job of eight 100,000-request batches (the API's
    ///   maximum), 70% errored, ending every three simulated hours from the first hour on. At
    ///   60x the random workload ends about 55,000 requests a real minute, a few percent of them
    ///   errored; the job adds about 23,000 errored a minute, so the errored share of any
    ///   hour-long window stays far above 10% for the job's 22 minutes and for most of an hour
    ///   after its last batch.
    /// - Within an hour of expiry: alerts compare `expires_at` with Prometheus' `time()`, the
    ///   wall clock, which accelerated simulated time leaves behind (after one real minute at 60x
    ///   any batch still in progress expires more than an hour after the wall clock). So this one
    ///   batch lives on the wall clock: it expires 50 real minutes after the start and stays
    ///   `in_progress` until the wall clock gets there, although simulated time passes its
    ///   `expires_at` much earlier. It then ends at its `expires_at` with expired requests.
    /// - A cancel that lingers: canceling since two hours before the start, it ends only 20
    ///   simulated hours after it (20 real minutes at 60x). Its `cancel_initiated_at` lies
    ///   before the start, so against the wall clock it has been canceling for over an hour from
    ///   the first scrape on.
    public static func demoScenario(speed: Double = 60) -> [ScriptedBatch] {
        let hour = 3600.0
        let expiry = SimulatedBatch.expiryInterval
        var batches: [ScriptedBatch] = []
        for endsAfter in [1.5 * hour, 4 * hour] {
            batches.append(
                ScriptedBatch(
                    createdBeforeStart: expiry - endsAfter, endsAfterStart: endsAfter,
                    endCounts: RequestCounts(succeeded: 3_150, errored: 42, expired: 1_808)))
        }
        for index in 0..<8 {
            batches.append(
                ScriptedBatch(
                    createdBeforeStart: hour, endsAfterStart: Double(1 + 3 * index) * hour,
                    endCounts: RequestCounts(succeeded: 30_000, errored: 70_000)))
        }
        // Ends when the wall clock reaches its expires_at: 50 real minutes after the start.
        let nearExpiryLeft = 50 * 60.0
        batches.append(
            ScriptedBatch(
                createdBeforeStart: expiry - nearExpiryLeft, endsAfterStart: nearExpiryLeft * speed,
                endCounts: RequestCounts(succeeded: 7_312, errored: 88, expired: 2_600)))
        batches.append(
            ScriptedBatch(
                createdBeforeStart: 3 * hour, cancelInitiatedBeforeStart: 2 * hour, endsAfterStart: 20 * hour,
                endCounts: RequestCounts(succeeded: 1_204, errored: 11, canceled: 3_785)))
        return batches
    }
}

/// A batch with a fixed story: created before the start, perhaps canceling since before it,
/// ending at a set simulated time with set counts. Dynamics never touch it, and it follows its
/// script rather than the 24-hour rule (the demo keeps one batch in progress past its simulated
/// expiry on purpose; it still ends no later than at `expires_at` in its timestamps).
public struct ScriptedBatch: Sendable, Equatable {
    /// Simulated seconds before the start at which the batch was created.
    public var createdBeforeStart: Double
    /// Simulated seconds before the start at which cancellation began; `nil` for a batch in progress.
    public var cancelInitiatedBeforeStart: Double?
    /// Simulated seconds after the start at which the batch ends.
    public var endsAfterStart: Double
    /// Its final counts; their sum is the batch's size, `processing` must be 0.
    public var endCounts: RequestCounts

    public init(
        createdBeforeStart: Double, cancelInitiatedBeforeStart: Double? = nil, endsAfterStart: Double,
        endCounts: RequestCounts
    ) {
        self.createdBeforeStart = createdBeforeStart
        self.cancelInitiatedBeforeStart = cancelInitiatedBeforeStart
        self.endsAfterStart = endsAfterStart
        self.endCounts = endCounts
    }
}
