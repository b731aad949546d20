import BatchesAPI
import BatchesExporter
import PrometheusExposition
import Testing

@Suite("The families one workspace exposes")
struct WorkspaceMetricsTests {
    static let workspace = "team \"a\""

    /// Everything a workspace shows after a listing of `batches` (or before any, for `nil`).
    func rendered(_ batches: [MessageBatch]?, health: PollHealth = PollHealth()) -> String {
        var families = WorkspaceMetrics.healthFamilies(workspace: Self.workspace, health: health, pollInterval: .seconds(60))
        families += WorkspaceMetrics.lifecycleFamilies(workspace: Self.workspace, lifecycle: BatchLifecycle())
        if let batches {
            let context = LedgerContext(countEndedAfter: 0, now: 20_000, endedRetention: 86_400)
            var builder = LedgerBuilder()
            var ledger = BatchLedger()
            builder.add(batches, comparingWith: ledger, context: context)
            _ = ledger.adopt(builder, context: context)
            families += WorkspaceMetrics.batchFamilies(workspace: Self.workspace, summary: BatchSummary(ledger))
            let selection = PerBatchSelection(from: Array(ledger.records.values), now: 20_000, maxBatches: 10, endedRetention: .seconds(86_400))
            families += WorkspaceMetrics.perBatchFamilies(workspace: Self.workspace, selection: selection)
        }
        return String(decoding: ExpositionRenderer.render(families, format: .text), as: UTF8.self)
    }

    @Test("Every documented status and result is present, zeros included, with the workspace label escaped")
    func zerosPresent() {
        let text = rendered([batch("b1", .inProgress)])
        for status in ["in_progress", "canceling", "ended"] {
            #expect(text.contains(#"anthropic_message_batches{workspace="team \"a\"",processing_status="\#(status)"}"#))
        }
        #expect(text.contains(#"anthropic_message_batches{workspace="team \"a\"",processing_status="canceling"} 0"#))
        for result in ["processing", "succeeded", "errored", "canceled", "expired"] {
            #expect(text.contains(#"anthropic_message_batches_requests{workspace="team \"a\"",result="\#(result)"}"#))
            #expect(text.contains(#"anthropic_message_batches_ended_requests_total{workspace="team \"a\"",result="\#(result)"} 0"#))
        }
        #expect(text.contains(#"anthropic_message_batches_requests{workspace="team \"a\"",result="processing"} 10"#))
    }

    @Test("Before the first successful poll there are health series but no batch series")
    func beforeFirstSuccess() {
        var health = PollHealth()
        health.recordFailure(.auth, duration: .seconds(1))
        let text = rendered(nil, health: health)
        #expect(!text.contains("anthropic_message_batches{"))
        #expect(text.contains(#"anthropic_batches_exporter_poll_success{workspace="team \"a\""} 0"#))
        #expect(text.contains(#"anthropic_batches_exporter_poll_errors_total{workspace="team \"a\"",reason="auth"} 1"#))
    }

    @Test("Per-batch series carry batch_id; ended and cancel timestamps only where set")
    func perBatch() {
        let text = rendered([
            batch("b2", .canceling, created: 12_000, cancelInitiated: 12_500),
            batch("b1", .ended, counts: RequestCounts(succeeded: 9, errored: 1), created: 10_000, ended: 15_000),
        ])
        #expect(text.contains(#"anthropic_message_batch_info{workspace="team \"a\"",batch_id="b2",processing_status="canceling"} 1"#))
        #expect(text.contains(#"anthropic_message_batch_cancel_initiated_timestamp_seconds{workspace="team \"a\"",batch_id="b2"} 12500"#))
        #expect(!text.contains(#"anthropic_message_batch_cancel_initiated_timestamp_seconds{workspace="team \"a\"",batch_id="b1"}"#))
        #expect(text.contains(#"anthropic_message_batch_ended_timestamp_seconds{workspace="team \"a\"",batch_id="b1"} 15000"#))
        #expect(!text.contains(#"anthropic_message_batch_ended_timestamp_seconds{workspace="team \"a\"",batch_id="b2"}"#))
        #expect(text.contains(#"anthropic_message_batch_requests{workspace="team \"a\"",batch_id="b1",result="errored"} 1"#))
        #expect(text.contains(#"anthropic_message_batch_expires_timestamp_seconds{workspace="team \"a\"",batch_id="b2"} 98400"#))
        #expect(text.contains(#"anthropic_batches_exporter_batch_metrics_dropped{workspace="team \"a\""} 0"#))
    }
}
