import BatchesAPI
import PrometheusExposition

/// Every family one workspace contributes, from its last good snapshot and its poll health.
/// Pure: the same inputs give the same families.
public enum WorkspaceMetrics {
    public struct Inputs: Sendable {
        public var workspace: String
        public var snapshot: WorkspaceSnapshot?
        public var selection: PerBatchSelection?
        public var lifecycle: BatchLifecycle
        public var health: PollHealth
        public var pollInterval: Duration

        public init(
            workspace: String,
            snapshot: WorkspaceSnapshot?,
            selection: PerBatchSelection?,
            lifecycle: BatchLifecycle,
            health: PollHealth,
            pollInterval: Duration
        ) {
            self.workspace = workspace
            self.snapshot = snapshot
            self.selection = selection
            self.lifecycle = lifecycle
            self.health = health
            self.pollInterval = pollInterval
        }
    }

    public static func families(_ inputs: Inputs) -> [MetricFamily] {
        let workspace = Label("workspace", inputs.workspace)
        var families = healthFamilies(inputs, workspace: workspace)
        families += lifecycleFamilies(inputs.lifecycle, workspace: workspace)
        // Before the first successful poll there is nothing true to say about the batches:
        // absent series, not zeros that would read as "no batches".
        guard let snapshot = inputs.snapshot else { return families }

        let statuses = snapshot.batchesByStatus.keys.sorted { lhs, rhs in
            let order = ProcessingStatus.documented
            return (order.firstIndex(of: lhs) ?? order.count, lhs.rawValue) < (order.firstIndex(of: rhs) ?? order.count, rhs.rawValue)
        }
        families.append(
            MetricFamily(
                name: "anthropic_message_batches",
                help: "Message batches listed in the workspace at the last successful poll, by processing_status.",
                type: .gauge,
                samples: statuses.map { status in
                    Sample([workspace, Label("processing_status", status.rawValue)], Double(snapshot.batchesByStatus[status] ?? 0))
                }
            )
        )
        families.append(
            MetricFamily(
                name: "anthropic_message_batches_requests",
                help: "Requests in all listed batches at the last successful poll, by result (request_counts summed).",
                type: .gauge,
                samples: snapshot.requestTotals.byResult.map { Sample([workspace, Label("result", $0.result)], Double($0.count)) }
            )
        )
        families.append(
            MetricFamily(
                name: "anthropic_batches_exporter_snapshot_batches",
                help: "Batches in the snapshot currently served.",
                type: .gauge,
                samples: [Sample([workspace], Double(snapshot.batches.count))]
            )
        )
        if let oldest = snapshot.oldestActiveCreatedAt {
            families.append(
                MetricFamily(
                    name: "anthropic_message_batches_oldest_active_created_timestamp_seconds",
                    help: "created_at of the oldest batch that has not ended. Absent when no batch is active.",
                    type: .gauge, unit: "seconds", samples: [Sample([workspace], oldest)]
                )
            )
        }
        if let expiry = snapshot.nextExpiry {
            families.append(
                MetricFamily(
                    name: "anthropic_message_batches_next_expiry_timestamp_seconds",
                    help: "The soonest expires_at among batches that have not ended. Absent when no batch is active.",
                    type: .gauge, unit: "seconds", samples: [Sample([workspace], expiry)]
                )
            )
        }
        if let selection = inputs.selection {
            families += perBatchFamilies(selection, workspace: workspace)
        }
        return families
    }

    /// The request budget, and the API's own rate-limit headers when it sends them.
    public static func budgetFamilies(
        workspace name: String,
        exhausted: UInt64,
        requestsPerMinute: Int,
        rateLimits: [String: Double]
    ) -> [MetricFamily] {
        let workspace = Label("workspace", name)
        var families = [
            MetricFamily(
                name: "anthropic_batches_exporter_api_budget_exhausted",
                help: "Polls spread out and full-resync steps deferred because --api.max-requests-per-minute was spent.",
                type: .counter, samples: [Sample([workspace], Double(exhausted))]
            ),
            MetricFamily(
                name: "anthropic_batches_exporter_api_budget_requests_per_minute",
                help: "The configured request budget (--api.max-requests-per-minute); 0 means none.",
                type: .gauge, samples: [Sample([workspace], Double(requestsPerMinute))]
            ),
        ]
        // anthropic-ratelimit-<resource>-<limit|remaining|reset>, only as seen: whether batch
        // endpoints send them is not documented.
        let fields: [(suffix: String, family: String, help: String, unit: String?)] = [
            ("-limit", "anthropic_batches_exporter_api_ratelimit_limit", "The API's anthropic-ratelimit-<resource>-limit header, last seen.", nil),
            ("-remaining", "anthropic_batches_exporter_api_ratelimit_remaining", "The API's anthropic-ratelimit-<resource>-remaining header, last seen.", nil),
            ("-reset", "anthropic_batches_exporter_api_ratelimit_reset_timestamp_seconds", "The API's anthropic-ratelimit-<resource>-reset header, last seen.", "seconds"),
        ]
        for field in fields {
            let samples = rateLimits.keys.sorted().compactMap { key -> Sample? in
                guard key.hasSuffix(field.suffix), let value = rateLimits[key] else { return nil }
                return Sample([workspace, Label("resource", String(key.dropLast(field.suffix.count)))], value)
            }
            if !samples.isEmpty {
                families.append(MetricFamily(name: field.family, help: field.help, type: .gauge, unit: field.unit, samples: samples))
            }
        }
        return families
    }

    static func healthFamilies(_ inputs: Inputs, workspace: Label) -> [MetricFamily] {
        let health = inputs.health
        var families: [MetricFamily] = []
        if let succeeded = health.lastPollSucceeded {
            families.append(
                MetricFamily(
                    name: "anthropic_batches_exporter_poll_success",
                    help: "1 if the last poll of the API read every page, 0 if it failed (the last good snapshot is still served).",
                    type: .gauge, samples: [Sample([workspace], succeeded ? 1 : 0)]
                )
            )
        }
        if let lastSuccess = health.lastSuccessAt {
            families.append(
                MetricFamily(
                    name: "anthropic_batches_exporter_last_success_timestamp_seconds",
                    help: "When the snapshot currently served was taken (end of the last successful poll).",
                    type: .gauge, unit: "seconds", samples: [Sample([workspace], lastSuccess)]
                )
            )
        }
        families.append(
            MetricFamily(
                name: "anthropic_batches_exporter_poll_interval_seconds",
                help: "The configured time between polls; failed polls back off up to 10 times this.",
                type: .gauge, unit: "seconds", samples: [Sample([workspace], inputs.pollInterval.inSeconds)]
            )
        )
        families.append(
            .histogram(
                name: "anthropic_batches_exporter_poll_duration_seconds",
                help: "Time one poll took, all pages and retries included, successful or not.",
                unit: "seconds",
                bounds: health.pollDurations.bounds,
                series: [([workspace], health.pollDurations.bucketCounts, health.pollDurations.sum, health.pollDurations.count)]
            )
        )
        families.append(
            MetricFamily(
                name: "anthropic_batches_exporter_api_requests",
                help: "Requests made to the Message Batches API, retries included, by HTTP status (\"error\" when no response came) and poll kind.",
                type: .counter,
                samples: health.apiRequests.keys.sorted().map { key in
                    Sample([workspace, Label("code", key.code), Label("kind", key.kind.rawValue)], Double(health.apiRequests[key] ?? 0))
                }
            )
        )
        families.append(
            MetricFamily(
                name: "anthropic_batches_exporter_poll_errors",
                help: "Failed polls by reason: timeout, transport, http_4xx, http_5xx, rate_limited, auth, decode, pagination.",
                type: .counter,
                samples: PollHealth.countedReasons.map { reason in
                    Sample([workspace, Label("reason", reason.rawValue)], Double(health.pollErrors[reason] ?? 0))
                }
            )
        )
        return families
    }

    static func lifecycleFamilies(_ lifecycle: BatchLifecycle, workspace: Label) -> [MetricFamily] {
        [
            MetricFamily(
                name: "anthropic_message_batches_ended",
                help: "Batches observed reaching processing_status ended since the exporter started.",
                type: .counter, samples: [Sample([workspace], Double(lifecycle.endedBatches))]
            ),
            MetricFamily(
                name: "anthropic_message_batches_ended_requests",
                help: "Requests in batches observed ending, by final result, since the exporter started.",
                type: .counter,
                samples: lifecycle.endedRequests.byResult.map { Sample([workspace, Label("result", $0.result)], Double($0.count)) }
            ),
            .histogram(
                name: "anthropic_message_batch_processing_duration_seconds",
                help: "ended_at minus created_at of batches observed ending.",
                unit: "seconds",
                bounds: lifecycle.processingDurations.bounds,
                series: [
                    (
                        [workspace], lifecycle.processingDurations.bucketCounts, lifecycle.processingDurations.sum,
                        lifecycle.processingDurations.count
                    )
                ]
            ),
        ]
    }

    static func perBatchFamilies(_ selection: PerBatchSelection, workspace: Label) -> [MetricFamily] {
        var info = MetricFamily(
            name: "anthropic_message_batch",
            help: "1 for every batch that has its own series (not ended, or ended within the retention), with its processing_status.",
            type: .info
        )
        var requests = MetricFamily(
            name: "anthropic_message_batch_requests",
            help: "A batch's request_counts by result.",
            type: .gauge
        )
        var created = MetricFamily(
            name: "anthropic_message_batch_created_timestamp_seconds", help: "A batch's created_at.", type: .gauge, unit: "seconds"
        )
        var expires = MetricFamily(
            name: "anthropic_message_batch_expires_timestamp_seconds",
            help: "A batch's expires_at (24 hours after creation).", type: .gauge, unit: "seconds"
        )
        var ended = MetricFamily(
            name: "anthropic_message_batch_ended_timestamp_seconds", help: "A batch's ended_at; only for ended batches.",
            type: .gauge, unit: "seconds"
        )
        var cancelInitiated = MetricFamily(
            name: "anthropic_message_batch_cancel_initiated_timestamp_seconds",
            help: "A batch's cancel_initiated_at; only for batches whose cancellation was requested.", type: .gauge, unit: "seconds"
        )
        for batch in selection.batches {
            let labels = [workspace, Label("batch_id", batch.id)]
            info.samples.append(Sample(labels + [Label("processing_status", batch.processingStatus.rawValue)], 1))
            for (result, count) in batch.requestCounts.byResult {
                requests.samples.append(Sample(labels + [Label("result", result)], Double(count)))
            }
            if let value = batch.createdAt { created.samples.append(Sample(labels, value)) }
            if let value = batch.expiresAt { expires.samples.append(Sample(labels, value)) }
            if let value = batch.endedAt, batch.processingStatus == .ended { ended.samples.append(Sample(labels, value)) }
            if let value = batch.cancelInitiatedAt { cancelInitiated.samples.append(Sample(labels, value)) }
        }
        let dropped = MetricFamily(
            name: "anthropic_batches_exporter_batch_metrics_dropped",
            help: "Batches that qualified for per-batch series but were left out by --batch-metrics.max-batches.",
            type: .gauge, samples: [Sample([workspace], Double(selection.dropped))]
        )
        return [info, requests, created, expires, ended, cancelInitiated, dropped]
    }
}
