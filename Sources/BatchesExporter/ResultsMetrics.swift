import BatchesAPI
import PrometheusExposition

/// The results families of one workspace, from the collector's state. Pure.
public enum ResultsMetrics {
    public static func families(_ state: ResultsCollectorState, workspace: String, pricesConfigured: Bool) -> [MetricFamily] {
        let workspace = Label("workspace", workspace)
        let totals = state.totals
        var families: [MetricFamily] = []

        // The documented result types always, so alerts on them never see a missing series.
        var results = totals.results
        for type in ResultsTally.documentedResults where results[type] == nil { results[type] = 0 }
        let resultOrder = results.keys.sorted { lhs, rhs in
            let order = ResultsTally.documentedResults
            return (order.firstIndex(of: lhs) ?? order.count, lhs) < (order.firstIndex(of: rhs) ?? order.count, rhs)
        }
        families.append(
            MetricFamily(
                name: "anthropic_message_batches_result_requests",
                help: "Requests in the counted results files of ended batches, by result type (result.type; unknown types kept, capped, then \"other\").",
                type: .counter,
                samples: resultOrder.map { Sample([workspace, Label("result", $0)], Double(results[$0] ?? 0)) }
            )
        )
        families.append(
            MetricFamily(
                name: "anthropic_message_batches_errored_requests",
                help: "Errored requests in counted results files, by result.error.error.type.",
                type: .counter,
                samples: totals.erroredByType.sorted { $0.key < $1.key }.map {
                    Sample([workspace, Label("error_type", $0.key)], Double($0.value))
                }
            )
        )
        families.append(
            MetricFamily(
                name: "anthropic_message_batches_tokens",
                help:
                    "Tokens used by the requests in counted results files, by model and token type (cache_creation_input_tokens without a breakdown counts as cache_write_5m).",
                type: .counter,
                samples: totals.tokens.sorted { ($0.key.model, $0.key.tokenType) < ($1.key.model, $1.key.tokenType) }.map {
                    Sample([workspace, Label("model", $0.key.model), Label("token_type", $0.key.tokenType.rawValue)], Double($0.value))
                }
            )
        )
        families.append(
            MetricFamily(
                name: "anthropic_message_batches_stop_reasons",
                help: "Succeeded requests in counted results files, by model and stop_reason (\"none\" when null).",
                type: .counter,
                samples: totals.stopReasons.sorted { ($0.key.model, $0.key.stopReason) < ($1.key.model, $1.key.stopReason) }.map {
                    Sample([workspace, Label("model", $0.key.model), Label("stop_reason", $0.key.stopReason)], Double($0.value))
                }
            )
        )
        families.append(
            MetricFamily(
                name: "anthropic_message_batches_web_search_requests",
                help: "Server-side web searches made by requests in counted results files, by model.",
                type: .counter,
                samples: totals.webSearchRequests.sorted { $0.key < $1.key }.map {
                    Sample([workspace, Label("model", $0.key)], Double($0.value))
                }
            )
        )
        if pricesConfigured {
            families.append(
                MetricFamily(
                    name: "anthropic_message_batches_estimated_cost_usd",
                    help: "Estimated USD cost of the counted results, by model, from --results.prices-file with its batch discount. An estimate, not a bill.",
                    type: .counter,
                    samples: totals.costUSD.sorted { $0.key < $1.key }.map { Sample([workspace, Label("model", $0.key)], $0.value) }
                )
            )
            families.append(
                MetricFamily(
                    name: "anthropic_message_batches_unpriced_tokens",
                    help: "Tokens of models that --results.prices-file has no price for, by model: left out of the estimated cost.",
                    type: .counter,
                    samples: totals.unpricedTokens.sorted { $0.key < $1.key }.map { Sample([workspace, Label("model", $0.key)], Double($0.value)) }
                )
            )
        }
        families.append(
            MetricFamily(
                name: "anthropic_batches_exporter_results_bytes",
                help: "Bytes of results files read, every attempt included.",
                type: .counter,
                samples: [Sample([workspace], Double(state.bytesRead))]
            )
        )
        families.append(
            MetricFamily(
                name: "anthropic_batches_exporter_results_batches",
                help:
                    "Results downloads by outcome: complete (counted), retrying (an attempt failed, another follows), failed (gave up), skipped_host (results_url not on the API's host), skipped_size (over --results.max-bytes).",
                type: .counter,
                samples: ResultsOutcome.allCases.map { Sample([workspace, Label("outcome", $0.rawValue)], Double(state.outcomes[$0] ?? 0)) }
            )
        )
        families.append(
            MetricFamily(
                name: "anthropic_batches_exporter_results_waiting_batches",
                help: "Ended batches whose results are waiting to be downloaded or are downloading.",
                type: .gauge,
                samples: [Sample([workspace], Double(state.waiting))]
            )
        )
        if let oldest = state.oldestWaitingEndedAt {
            families.append(
                MetricFamily(
                    name: "anthropic_batches_exporter_results_oldest_waiting_timestamp_seconds",
                    help: "ended_at of the oldest batch whose results are still waiting. Absent when none waits.",
                    type: .gauge, unit: "seconds",
                    samples: [Sample([workspace], oldest)]
                )
            )
        }
        // A family with no series yet (no errored request so far) is left out, not rendered empty.
        return families.filter { !$0.samples.isEmpty }
    }
}
