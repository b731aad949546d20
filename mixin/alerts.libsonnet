// The alerting rules. Every expression keeps the target labels (job, instance,
// namespace, cluster, pod ...) by aggregating `without` the exporter's own labels,
// so two exporters never merge into one alert and Alertmanager can group and
// inhibit by namespace or cluster.
//
// The exporter's behaviour these rules are built around (Sources/BatchesExporter/PollHealth.swift):
// after a failed poll the next one waits 2x, then 4x, 8x and at most 10x the poll
// interval. Failure counters therefore move in steps minutes apart during an
// outage, and a counter `increase` over a fixed window empties between them; the
// rules below tell "polls keep failing" from gauges that hold their value between
// polls (poll_success, snapshot_age_seconds), and read counters only to say why.
{
  local cfg = self._config,
  local indent(text, n) =
    local pad = std.repeat(' ', n);
    std.join('\n', [if line == '' then line else pad + line for line in std.split(std.rstripChars(text, '\n'), '\n')]),
  local runbook(name) = cfg.runbookURLPattern % std.asciiLower(name),
  local targetLabels = std.join(', ', [cfg.clusterLabel, cfg.namespaceLabel, 'job', 'instance']),
  local jobLabels = std.join(', ', [cfg.clusterLabel, cfg.namespaceLabel, 'job']),
  local g(x) = std.format('%g', x),
  // The settings as PromQL text: numbers in their shortest form (0.1, not 0.10000000000000001).
  local f = cfg {
    targetLabels: targetLabels,
    jobLabels: jobLabels,
    staleIntervals: g(cfg.staleIntervals),
    failureReasonShare: g(cfg.failureReasonShare),
    erroredRatioThreshold: g(cfg.erroredRatioThreshold),
    invalidRequestRatioThreshold: g(cfg.invalidRequestRatioThreshold),
    maxTokensRatioThreshold: g(cfg.maxTokensRatioThreshold),
    ratioMinRequests: g(cfg.ratioMinRequests),
    nearExpirySeconds: g(cfg.nearExpirySeconds),
    stuckCancelingSeconds: g(cfg.stuckCancelingSeconds),
  },

  // The snapshot is older than `staleIntervals` poll intervals.
  local staleSnapshot = |||
    anthropic_batches_exporter_snapshot_age_seconds{%(exporterSelector)s}
      > %(staleIntervals)s * anthropic_batches_exporter_poll_interval_seconds{%(exporterSelector)s}
  ||| % f,

  // Polls keep failing: the last poll failed and the last success (or, before any,
  // the process start) is more than `staleIntervals` poll intervals ago. With the
  // back-off that takes two failed polls in a row: after one, the next poll comes
  // 2 intervals later, 3 after the last success. The condition then holds without
  // a gap for as long as polls fail, however far apart the back-off spaces them.
  local pollsFailing = |||
    anthropic_batches_exporter_poll_success{%(exporterSelector)s} == 0
    and
    (
        anthropic_batches_exporter_snapshot_age_seconds{%(exporterSelector)s}
          > %(staleIntervals)s * anthropic_batches_exporter_poll_interval_seconds{%(exporterSelector)s}
      or
        (
            %(staleIntervals)s * anthropic_batches_exporter_poll_interval_seconds{%(exporterSelector)s}
              < on (%(targetLabels)s) group_left ()
            (time() - process_start_time_seconds{%(exporterSelector)s})
          unless
            anthropic_batches_exporter_snapshot_age_seconds{%(exporterSelector)s}
        )
    )
  ||| % f,

  // Most failed polls in failureReasonWindow had this reason.
  local mostFailuresAre(reason) = |||
    increase(anthropic_batches_exporter_poll_errors_total{%(exporterSelector)s, reason="%(reason)s"}[%(failureReasonWindow)s])
      / ignoring (reason)
    sum without (reason) (increase(anthropic_batches_exporter_poll_errors_total{%(exporterSelector)s}[%(failureReasonWindow)s]))
      > %(failureReasonShare)s
  ||| % (f { reason: reason }),

  local alert(name, expr, forDuration, severity, summary, description) = {
    alert: name,
    expr: expr,
    'for': forDuration,
    labels: { severity: severity },
    annotations: {
      summary: summary,
      description: description,
      runbook_url: runbook(name),
    },
  },

  prometheusAlerts+:: {
    groups+: [
      {
        name: 'anthropic-message-batches',
        rules: [
          // Any expired request is worth a look. The hour-long window holds the
          // alert for an hour after the event, so a `for` would only delay it.
          alert(
            'AnthropicBatchRequestsExpired',
            |||
              sum without (result) (
                increase(anthropic_message_batches_ended_requests_total{%(exporterSelector)s, result="expired"}[1h])
              ) > 0
            ||| % f,
            '0m', 'warning',
            'Message Batches requests expired in workspace {{ $labels.workspace }}',
            'About {{ $value | humanize }} requests of batches that ended in the last hour in workspace {{ $labels.workspace }} ({{ $labels.instance }}) expired: their batch reached its 24 hour limit before they were processed. They have no result and must be resubmitted.',
          ),

          // Share of errored requests among the requests of batches that ended in
          // the last hour, once at least ratioMinRequests requests ended.
          alert(
            'AnthropicBatchErroredRatioHigh',
            |||
              (
                  sum without (result) (increase(anthropic_message_batches_ended_requests_total{%(exporterSelector)s, result="errored"}[1h]))
                /
                  sum without (result) (increase(anthropic_message_batches_ended_requests_total{%(exporterSelector)s}[1h]))
              ) > %(erroredRatioThreshold)s
              and
                sum without (result) (increase(anthropic_message_batches_ended_requests_total{%(exporterSelector)s}[1h])) >= %(ratioMinRequests)s
            ||| % f,
            '15m', 'warning',
            'Many Message Batches requests errored in workspace {{ $labels.workspace }}',
            '{{ $value | humanizePercentage }} of the requests of batches that ended in the last hour in workspace {{ $labels.workspace }} ({{ $labels.instance }}) errored (threshold %s, at least %d requests). Their results carry the error of each request.' % [g(cfg.erroredRatioThreshold * 100) + '%', cfg.ratioMinRequests],
          ),

          // Of the result lines read from results files (succeeded + errored),
          // the share that failed as invalid_request_error: the requests are
          // wrong, and resubmitting them unchanged fails again.
          alert(
            'AnthropicBatchInvalidRequestsHigh',
            |||
              (
                  sum without (error_type) (increase(anthropic_message_batches_errored_requests_total{%(exporterSelector)s, error_type="invalid_request_error"}[1h]))
                /
                  sum without (result) (increase(anthropic_message_batches_result_requests_total{%(exporterSelector)s, result=~"succeeded|errored"}[1h]))
              ) > %(invalidRequestRatioThreshold)s
              and
                sum without (result) (increase(anthropic_message_batches_result_requests_total{%(exporterSelector)s, result=~"succeeded|errored"}[1h])) >= %(ratioMinRequests)s
            ||| % f,
            '15m', 'warning',
            'Many Message Batches requests are invalid in workspace {{ $labels.workspace }}',
            '{{ $value | humanizePercentage }} of the result lines read in the last hour in workspace {{ $labels.workspace }} ({{ $labels.instance }}) are invalid_request_error (threshold %s, at least %d results). Retrying will not help: the code building the requests must be fixed.' % [g(cfg.invalidRequestRatioThreshold * 100) + '%', cfg.ratioMinRequests],
          ),

          // Share of outputs, per model, that stopped at max_tokens: truncated
          // answers that were paid for in full.
          alert(
            'AnthropicBatchMaxTokensStopsHigh',
            |||
              (
                  sum without (stop_reason) (increase(anthropic_message_batches_stop_reasons_total{%(exporterSelector)s, stop_reason="max_tokens"}[1h]))
                /
                  sum without (stop_reason) (increase(anthropic_message_batches_stop_reasons_total{%(exporterSelector)s}[1h]))
              ) > %(maxTokensRatioThreshold)s
              and
                sum without (stop_reason) (increase(anthropic_message_batches_stop_reasons_total{%(exporterSelector)s}[1h])) >= %(ratioMinRequests)s
            ||| % f,
            '15m', 'warning',
            'Many {{ $labels.model }} outputs stop at max_tokens in workspace {{ $labels.workspace }}',
            '{{ $value | humanizePercentage }} of the {{ $labels.model }} outputs read in the last hour in workspace {{ $labels.workspace }} ({{ $labels.instance }}) stopped at max_tokens (threshold %s, at least %d outputs): they are cut off.' % [g(cfg.maxTokensRatioThreshold * 100) + '%', cfg.ratioMinRequests],
          ),

          // One alert per batch still in_progress less than nearExpirySeconds
          // before its expires_at. Quiet while the snapshot is stale: the batch
          // may have ended since, and the exporter alerts say what is wrong.
          alert(
            'AnthropicBatchNearExpiry',
            |||
              (
                  clamp_min(anthropic_message_batch_expires_timestamp_seconds{%(exporterSelector)s} - time(), 0) < %(nearExpirySeconds)s
                and ignoring (processing_status)
                  anthropic_message_batch_info{%(exporterSelector)s, processing_status="in_progress"} == 1
              )
              unless ignoring (batch_id)
              (
            ||| % f + indent(staleSnapshot, 4) + '\n)\n',
            '5m', 'warning',
            'Message batch {{ $labels.batch_id }} is close to its 24 hour expiry',
            'Batch {{ $labels.batch_id }} in workspace {{ $labels.workspace }} is still in progress and expires in {{ $value | humanizeDuration }}. Requests not processed by then will end as expired.',
          ),

          // One alert per batch canceling for over stuckCancelingSeconds, from its
          // cancel_initiated_at (an exporter restart does not reset the clock).
          // Quiet while the snapshot is stale, as above.
          alert(
            'AnthropicBatchStuckCanceling',
            |||
              (
                  time() - anthropic_message_batch_cancel_initiated_timestamp_seconds{%(exporterSelector)s} > %(stuckCancelingSeconds)s
                and ignoring (processing_status)
                  anthropic_message_batch_info{%(exporterSelector)s, processing_status="canceling"} == 1
              )
              unless ignoring (batch_id)
              (
            ||| % f + indent(staleSnapshot, 4) + '\n)\n',
            '5m', 'warning',
            'Message batch {{ $labels.batch_id }} has been canceling for over an hour',
            'Cancellation of batch {{ $labels.batch_id }} in workspace {{ $labels.workspace }} was requested {{ $value | humanizeDuration }} ago and the batch has still not ended.',
          ),
        ],
      },
      {
        name: 'anthropic-batches-exporter',
        rules: [
          // Polls keep failing (two or more in a row, see pollsFailing). One failed
          // poll is normal and never fires, whatever the interval.
          alert(
            'AnthropicBatchesExporterPollFailing',
            pollsFailing,
            '5m', 'warning',
            'anthropic-batches-exporter cannot poll the Message Batches API for workspace {{ $labels.workspace }}',
            'Polls of {{ $labels.instance }} for workspace {{ $labels.workspace }} keep failing: at least two in a row, and none succeeded for over %d poll intervals. Its batch metrics are frozen at the last good snapshot. anthropic_batches_exporter_poll_errors_total says why (by reason).' % cfg.staleIntervals,
          ),

          // The snapshot is stale although the last poll succeeded: the poll loop
          // is stuck, or one poll takes longer than staleIntervals intervals.
          // Failing polls are PollFailing's, so one outage raises one alert.
          alert(
            'AnthropicBatchesExporterSnapshotStale',
            staleSnapshot + |||
              unless
                anthropic_batches_exporter_poll_success{%(exporterSelector)s} == 0
            ||| % f,
            '5m', 'warning',
            'anthropic-batches-exporter serves a stale snapshot for workspace {{ $labels.workspace }}',
            'The snapshot {{ $labels.instance }} serves for workspace {{ $labels.workspace }} is {{ $value | humanizeDuration }} old, more than %d poll intervals, although no poll failed: the poll loop is stuck or a poll takes that long.' % cfg.staleIntervals,
          ),

          // Polls keep failing and most failures in failureReasonWindow were 401/403.
          // Reading the reason over a window longer than the back-off keeps the
          // alert firing between failed polls 10 intervals apart.
          alert(
            'AnthropicBatchesExporterAuthFailing',
            pollsFailing + 'and ignoring (reason)\n(\n' + indent(mostFailuresAre('auth'), 2) + '\n)\n',
            '5m', 'critical',
            'The Message Batches API rejects the key of anthropic-batches-exporter (workspace {{ $labels.workspace }})',
            'Polls of {{ $labels.instance }} for workspace {{ $labels.workspace }} keep failing with authentication or permission errors. The exporter is blind until the key is fixed, and any job using the same key is rejected too.',
          ),

          // 429s without a gap of 5 minutes for 15 minutes while polls get
          // through on retries, or polls failing, mostly as rate limited (then
          // the back-off spaces them far apart, so the first branch cannot see them).
          alert(
            'AnthropicBatchesExporterRateLimited',
            |||
              sum without (code, kind) (
                increase(anthropic_batches_exporter_api_requests_total{%(exporterSelector)s, code="429"}[5m])
              ) > 0
              or
              (
            ||| % f + indent(pollsFailing + 'and ignoring (reason)\n(\n' + indent(mostFailuresAre('rate_limited'), 2) + '\n)\n', 2) + '\n)\n',
            '15m', 'warning',
            'The Message Batches API rate limits anthropic-batches-exporter (workspace {{ $labels.workspace }})',
            '{{ $labels.instance }} has been getting rate-limited answers (429) for workspace {{ $labels.workspace }} for 15 minutes, or its polls keep failing as rate limited. Its polls spend the same per-minute budget as the workspace\'s batch jobs.',
          ),

          // A target Prometheus cannot scrape, or no target at all: a target gone
          // from service discovery leaves no `up` series to be 0.
          alert(
            'AnthropicBatchesExporterDown',
            |||
              up{%(exporterSelector)s} == 0
              or
              absent(up{%(exporterSelector)s})
            ||| % f,
            '5m', 'warning',
            '{{ if $labels.instance }}anthropic-batches-exporter target {{ $labels.instance }} is down{{ else }}No anthropic-batches-exporter target is discovered{{ end }}',
            '{{ if $labels.instance }}Prometheus has failed to scrape {{ $labels.instance }} (job {{ $labels.job }}) for 5 minutes.{{ else }}Prometheus has had no target for %s for 5 minutes.{{ end }} No Message Batches alert can fire for its workspaces meanwhile.' % cfg.exporterSelector,
          ),

          // The last configuration load (SIGHUP, POST /-/reload) failed; the previous
          // configuration is still in use.
          alert(
            'AnthropicBatchesExporterConfigReloadFailed',
            |||
              max_over_time(anthropic_batches_exporter_config_last_reload_successful{%(exporterSelector)s}[5m]) == 0
            ||| % f,
            '10m', 'warning',
            'anthropic-batches-exporter {{ $labels.instance }} failed to reload its configuration',
            'The last configuration reload of {{ $labels.instance }} failed; it still runs the previous configuration. Changes made since (new workspaces, keys, intervals) are not in effect.',
          ),

          // Active batches left without per-batch series by --batch-metrics.max-batches:
          // NearExpiry and StuckCanceling cannot see them.
          alert(
            'AnthropicBatchesExporterBatchSeriesDropped',
            |||
              (
                  sum without (processing_status) (anthropic_message_batches{%(exporterSelector)s, processing_status=~"in_progress|canceling"})
                -
                  (
                      count without (batch_id, processing_status) (anthropic_message_batch_info{%(exporterSelector)s, processing_status=~"in_progress|canceling"})
                    or
                      0 * sum without (processing_status) (anthropic_message_batches{%(exporterSelector)s, processing_status=~"in_progress|canceling"})
                  )
              ) > 0
              and
                anthropic_batches_exporter_batch_metrics_dropped{%(exporterSelector)s} > 0
            ||| % f,
            '15m', 'warning',
            'Active batches of workspace {{ $labels.workspace }} have no per-batch series',
            '{{ $value }} batches in progress or canceling in workspace {{ $labels.workspace }} ({{ $labels.instance }}) were left out by --batch-metrics.max-batches: AnthropicBatchNearExpiry and AnthropicBatchStuckCanceling cannot fire for them.',
          ),

          // Re-reading a changed key file failed; the exporter keeps the last good
          // key, so a rotation has not taken effect. Any error holds it for an hour.
          alert(
            'AnthropicBatchesExporterKeyFileErrors',
            |||
              increase(anthropic_batches_exporter_api_key_file_errors_total{%(exporterSelector)s}[1h]) > 0
            ||| % f,
            '0m', 'warning',
            'anthropic-batches-exporter cannot re-read the API key file of workspace {{ $labels.workspace }}',
            '{{ $labels.instance }} failed to re-read the changed key file of workspace {{ $labels.workspace }} about {{ $value | humanize }} times in the last hour and keeps using the previous key. Once that key is revoked, polls fail.',
          ),

          // Sharding: one workspace polled by two exporters of a job. Both spend
          // the workspace's rate limit and dashboards count its batches twice.
          alert(
            'AnthropicBatchesExporterWorkspaceExportedTwice',
            |||
              count by (%(jobLabels)s, workspace) (anthropic_batches_exporter_poll_interval_seconds{%(exporterSelector)s}) > 1
            ||| % f,
            '15m', 'warning',
            'Workspace {{ $labels.workspace }} is exported by {{ $value }} exporters of job {{ $labels.job }}',
            '{{ $value }} targets of job {{ $labels.job }} poll workspace {{ $labels.workspace }}. Check the shard flags (--shard.index, --shard.count) and that no other deployment uses the same --workspace-name.',
          ),

          // Sharding: workspaces of the configuration that no shard polls, seen as
          // fewer workspaces polled than configured, or fewer shards than the
          // count they were started with.
          alert(
            'AnthropicBatchesExporterWorkspacesNotExported',
            |||
              sum by (%(jobLabels)s) (anthropic_batches_exporter_shard_workspaces{%(exporterSelector)s})
                < max by (%(jobLabels)s) (anthropic_batches_exporter_config_workspaces{%(exporterSelector)s})
            ||| % f + std.join('', [
              'or\n  count by (%(jobLabels)s) (anthropic_batches_exporter_shard_info{%(exporterSelector)s, count="%(n)d"}) < %(n)d\n' % (f { n: n })
              for n in std.range(2, cfg.maxShards)
            ]),
            '15m', 'warning',
            'Workspaces of job {{ $labels.job }} are not polled by any shard',
            'Job {{ $labels.job }} polls fewer workspaces than its configuration holds, or runs fewer shards than --shard.count. Workspaces of a missing shard have no metrics and no alerts.',
          ),
        ],
      },
    ],
  },
}
