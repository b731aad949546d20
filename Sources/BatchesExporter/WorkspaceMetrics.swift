import Basics
import BatchesAPI
import PrometheusExposition

/// What the batch gauges show: the ledger's running totals and the two aggregates over the
/// batches that have not ended. A value, taken when the ledger changes.
public struct BatchSummary: Sendable, Equatable {
    public var totals: LedgerTotals
    /// The oldest `created_at` among batches that have not ended; `nil` when none is active.
    public var oldestActiveCreatedAt: Double?
    /// The soonest `expires_at` among batches that have not ended.
    public var nextExpiry: Double?

    public init(totals: LedgerTotals, oldestActiveCreatedAt: Double?, nextExpiry: Double?) {
        self.totals = totals
        self.oldestActiveCreatedAt = oldestActiveCreatedAt
        self.nextExpiry = nextExpiry
    }

    /// Reads the ledger's totals, and its full records for the rest: only batches not ended
    /// can be the oldest active one or the next to expire, and each of those has a record.
    public init(_ ledger: BatchLedger) {
        var oldest: Double?
        var expiry: Double?
        for batch in ledger.activeRecords {
            if let created = batch.createdAt { oldest = min(oldest ?? created, created) }
            if let expires = batch.expiresAt { expiry = min(expiry ?? expires, expires) }
        }
        self.init(totals: ledger.totals, oldestActiveCreatedAt: oldest, nextExpiry: expiry)
    }
}

/// The families one workspace contributes, in groups that change at different rates: health
/// on every poll, the batch gauges and per-batch series when batches change, the lifecycle
/// counters when batches end. Pure: the same inputs give the same families.
public enum WorkspaceMetrics {
    /// The batch gauges. Before the first successful poll there is nothing true to say about
    /// the batches: the caller publishes no such group then (absent series, not zeros that
    /// would read as "no batches").
    public static func batchFamilies(workspace name: String, summary: BatchSummary) -> [MetricFamily] {
        let workspace = Label("workspace", name)
        let byStatus = summary.totals.byStatus
        let statuses = byStatus.keys.sorted { lhs, rhs in
            let order = ProcessingStatus.documented
            return (order.firstIndex(of: lhs) ?? order.count, lhs.rawValue) < (order.firstIndex(of: rhs) ?? order.count, rhs.rawValue)
        }
        var families: [MetricFamily] = []
        families.append(
            MetricFamily(
                name: "anthropic_message_batches",
                help: "Message batches listed in the workspace at the last successful poll, by processing_status.",
                type: .gauge,
                samples: statuses.map { status in
                    Sample([workspace, Label("processing_status", status.rawValue)], Double(byStatus[status] ?? 0))
                }
            )
        )
        families.append(
            MetricFamily(
                name: "anthropic_message_batches_requests",
                help: "Requests in all listed batches at the last successful poll, by result (request_counts summed).",
                type: .gauge,
                samples: summary.totals.requests.byResult.map { Sample([workspace, Label("result", $0.result)], Double($0.count)) }
            )
        )
        families.append(
            MetricFamily(
                name: "anthropic_batches_exporter_snapshot_batches",
                help: "Batches in the snapshot currently served.",
                type: .gauge,
                samples: [Sample([workspace], Double(summary.totals.batches))]
            )
        )
        if let oldest = summary.oldestActiveCreatedAt {
            families.append(
                MetricFamily(
                    name: "anthropic_message_batches_oldest_active_created_timestamp_seconds",
                    help: "created_at of the oldest batch that has not ended. Absent when no batch is active.",
                    type: .gauge, unit: "seconds", samples: [Sample([workspace], oldest)]
                )
            )
        }
        if let expiry = summary.nextExpiry {
            families.append(
                MetricFamily(
                    name: "anthropic_message_batches_next_expiry_timestamp_seconds",
                    help: "The soonest expires_at among batches that have not ended. Absent when no batch is active.",
                    type: .gauge, unit: "seconds", samples: [Sample([workspace], expiry)]
                )
            )
        }
        return families
    }

    /// Corrections full reads made to what incremental polls had built.
    public static func correctionFamilies(workspace name: String, corrections: [LedgerCorrection: UInt64]) -> [MetricFamily] {
        let workspace = Label("workspace", name)
        return [
            MetricFamily(
                name: "anthropic_batches_exporter_resync_corrections",
                help:
                    "Batches a full resync found different from what incremental polls had built, by kind: deleted, archived, changed, added (missed), drift (running totals disagreed with a recount: a bug).",
                type: .counter,
                samples: LedgerCorrection.allCases.map { Sample([workspace, Label("kind", $0.rawValue)], Double(corrections[$0] ?? 0)) }
            )
        ]
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
            (
                "-reset", "anthropic_batches_exporter_api_ratelimit_reset_timestamp_seconds",
                "The API's anthropic-ratelimit-<resource>-reset header, last seen.", "seconds"
            ),
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

    public static func healthFamilies(workspace name: String, health: PollHealth, pollInterval: Duration) -> [MetricFamily] {
        let workspace = Label("workspace", name)
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
                type: .gauge, unit: "seconds", samples: [Sample([workspace], pollInterval.inSeconds)]
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

    public static func lifecycleFamilies(workspace name: String, lifecycle: BatchLifecycle) -> [MetricFamily] {
        let workspace = Label("workspace", name)
        return [
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

    /// - Parameter includingDropped: whether the `batch_metrics_dropped` gauge is among them; a
    ///   caller that renders it on its own (it moves as ended batches leave the retention,
    ///   without any shown batch changing) takes it from ``perBatchDroppedFamily(workspace:dropped:)``.
    public static func perBatchFamilies(
        workspace name: String, selection: PerBatchSelection, includingDropped: Bool = true
    ) -> [MetricFamily] {
        let workspace = Label("workspace", name)
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
        let shown = [info, requests, created, expires, ended, cancelInitiated]
        return includingDropped ? shown + [perBatchDroppedFamily(workspace: name, dropped: selection.dropped)] : shown
    }

    public static func perBatchDroppedFamily(workspace name: String, dropped: Int) -> MetricFamily {
        MetricFamily(
            name: "anthropic_batches_exporter_batch_metrics_dropped",
            help: "Batches that qualified for per-batch series but were left out by --batch-metrics.max-batches.",
            type: .gauge, samples: [Sample([Label("workspace", name)], Double(dropped))]
        )
    }
}
