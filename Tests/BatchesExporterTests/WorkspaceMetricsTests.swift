import BatchesAPI
import BatchesExporter
import PrometheusExposition
import Testing

@Suite("The families one workspace exposes")
struct WorkspaceMetricsTests {
    func rendered(_ inputs: WorkspaceMetrics.Inputs) -> String {
        String(decoding: ExpositionRenderer.render(WorkspaceMetrics.families(inputs), format: .text), as: UTF8.self)
    }

    func inputs(snapshot: WorkspaceSnapshot?, health: PollHealth = PollHealth()) -> WorkspaceMetrics.Inputs {
        WorkspaceMetrics.Inputs(
            workspace: "team \"a\"",
            snapshot: snapshot,
            selection: snapshot.map { PerBatchSelection(from: $0.batches, now: 20_000, maxBatches: 10, endedRetention: .seconds(86_400)) },
            lifecycle: BatchLifecycle(exporterStartedAt: 0),
            health: health,
            pollInterval: .seconds(60)
        )
    }

    @Test("Every documented status and result is present, zeros included, with the workspace label escaped")
    func zerosPresent() {
        let text = rendered(inputs(snapshot: WorkspaceSnapshot(batches: [batch("b1", .inProgress)], takenAt: 1)))
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
        let text = rendered(inputs(snapshot: nil, health: health))
        #expect(!text.contains("anthropic_message_batches{"))
        #expect(text.contains(#"anthropic_batches_exporter_poll_success{workspace="team \"a\""} 0"#))
        #expect(text.contains(#"anthropic_batches_exporter_poll_errors_total{workspace="team \"a\"",reason="auth"} 1"#))
    }

    @Test("Per-batch series carry batch_id; ended and cancel timestamps only where set")
    func perBatch() {
        let snapshot = WorkspaceSnapshot(
            batches: [
                batch("b2", .canceling, created: 12_000, cancelInitiated: 12_500),
                batch("b1", .ended, counts: RequestCounts(succeeded: 9, errored: 1), created: 10_000, ended: 15_000),
            ],
            takenAt: 20_000
        )
        let text = rendered(inputs(snapshot: snapshot))
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
