// Settings of the anthropic-batches-exporter mixin. Override any of them with
//   (import 'mixin.libsonnet') + { _config+:: { exporterSelector: 'job="batches"' } }
// or edit them here and run mixin/build.sh to regenerate the shipped files.
{
  _config+:: {
    // Where this project lives. Set it once: runbook links point at the README
    // anchors under it (see runbookURLPattern). example.com is a reserved name,
    // so an unset value can never send an on-call engineer to someone else's page.
    projectURL: 'https://example.com/anthropic-batches-exporter',
    // `%s` is the alert name in lower case, which is the README heading's anchor
    // ("### Runbook: AnthropicBatchesExporterDown" -> #runbook-anthropicbatchesexporterdown).
    runbookURLPattern: self.projectURL + '#runbook-%s',

    // Selects the exporter's series in every alert and dashboard query. With the
    // Prometheus Operator the job is the Service's name.
    exporterSelector: 'job="anthropic-batches-exporter"',

    // Target labels Prometheus adds. Aggregations keep them all (`without`, never
    // `by (workspace)`), so two exporters never merge into one alert; these names
    // are used where a grouping must be spelled out (shard alerts, joins, dashboard).
    clusterLabel: 'cluster',
    namespaceLabel: 'namespace',
    // Show the cluster variable on the dashboard (Thanos, Mimir, several clusters).
    showMultiCluster: false,

    // A snapshot older than this many poll intervals means at least two polls in a
    // row failed (the exporter waits 2x the interval after a failure) or the poll
    // loop is stuck.
    staleIntervals: 3,
    // How far back failed polls are read to tell why polls fail (auth, rate
    // limits). Must exceed the longest back-off: 10 x the longest --poll-interval.
    failureReasonWindow: '3h',
    // Share of those failures that must have one reason to name it.
    failureReasonShare: 0.5,

    // Ratio alerts on requests of ended batches, over one hour.
    erroredRatioThreshold: 0.1,
    invalidRequestRatioThreshold: 0.05,
    maxTokensRatioThreshold: 0.1,
    // No ratio alert on fewer requests than this in the hour: one errored
    // request out of one is not a trend.
    ratioMinRequests: 100,

    // Per-batch alerts.
    nearExpirySeconds: 3600,
    stuckCancelingSeconds: 3600,

    // The shard alerts check shard_info's `count` label for values 2..maxShards.
    maxShards: 16,

    // Labels of the PrometheusRule. kube-prometheus-stack selects rules by
    // `release: <helm release name>`: add it here (or with the kustomize `labels`
    // entry shown in deploy/kubernetes/kustomization.yaml).
    prometheusRuleLabels: {
      'app.kubernetes.io/name': 'anthropic-batches-exporter',
      'app.kubernetes.io/component': 'alerting-rules',
    },
    // The ConfigMap the Grafana sidecar (kube-prometheus-stack, grafana chart)
    // loads dashboards from: it watches ConfigMaps with this label.
    grafanaDashboardLabels: {
      grafana_dashboard: '1',
      'app.kubernetes.io/name': 'anthropic-batches-exporter',
      'app.kubernetes.io/component': 'dashboards',
    },
    grafanaFolder: 'Anthropic',

    dashboardUID: 'anthropic-message-batches',
    dashboardRefresh: '1m',
  },
}
