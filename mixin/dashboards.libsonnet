// The Grafana dashboard: the panels of dashboards/anthropic-message-batches.libsonnet,
// their queries filled in with the mixin's selectors, the variables built from
// _config, and the results row (issue 13's metrics).
{
  local cfg = self._config,
  local ds = { type: 'prometheus', uid: '${datasource}' },

  // Matchers every query carries: the exporter selector, then one per variable.
  local targetMatchers =
    [cfg.exporterSelector] +
    [
      '%s=~"$%s"' % [label, label]
      for label in [cfg.clusterLabel, cfg.namespaceLabel]
    ] +
    ['job=~"$job"'],
  local selectors = {
    targetSelector: std.join(', ', targetMatchers),
    workspaceSelector: std.join(', ', targetMatchers + ['workspace=~"$workspace"']),
    targetLabels: std.join(', ', [cfg.clusterLabel, cfg.namespaceLabel, 'job', 'instance']),
  },

  // A query variable over the exporter's always-present poll_interval series,
  // narrowed by the variables before it. `All` matches any value and also a
  // missing label (`.*`), so a Prometheus without cluster or namespace labels
  // works unchanged.
  local variableMetric = 'anthropic_batches_exporter_poll_interval_seconds',
  local queryVariable(name, label, title, matchers, hide=0) = {
    local query = 'label_values(%s{%s}, %s)' % [variableMetric, std.join(', ', matchers), label],
    name: name,
    label: title,
    type: 'query',
    datasource: ds,
    definition: query,
    query: { query: query, refId: 'PrometheusVariableQueryEditor-VariableQuery', qryType: 1 },
    current: {},
    hide: hide,
    includeAll: true,
    allValue: '.*',
    multi: true,
    options: [],
    refresh: 2,
    regex: '',
    sort: 1,
    skipUrlSync: false,
  },
  local clusterMatcher = '%s=~"$%s"' % [cfg.clusterLabel, cfg.clusterLabel],
  local namespaceMatcher = '%s=~"$%s"' % [cfg.namespaceLabel, cfg.namespaceLabel],
  local variables = [
    {
      name: 'datasource',
      label: 'Data source',
      type: 'datasource',
      query: 'prometheus',
      current: {},
      hide: 0,
      includeAll: false,
      multi: false,
      options: [],
      refresh: 1,
      regex: '',
      skipUrlSync: false,
    },
    queryVariable(cfg.clusterLabel, cfg.clusterLabel, 'Cluster', [cfg.exporterSelector], hide=if cfg.showMultiCluster then 0 else 2),
    queryVariable(cfg.namespaceLabel, cfg.namespaceLabel, 'Namespace', [cfg.exporterSelector, clusterMatcher]),
    queryVariable('job', 'job', 'Job', [cfg.exporterSelector, clusterMatcher, namespaceMatcher]),
    queryVariable('workspace', 'workspace', 'Workspace', [cfg.exporterSelector, clusterMatcher, namespaceMatcher, 'job=~"$job"']),
  ],

  local target(refId, expr, legend) = {
    refId: refId,
    datasource: ds,
    expr: expr,
    editorMode: 'code',
    range: true,
    legendFormat: legend,
  },
  local timeseries(id, title, description, gridPos, unit, targets, stacked=false) = {
    type: 'timeseries',
    id: id,
    title: title,
    description: description,
    datasource: ds,
    gridPos: gridPos,
    targets: targets,
    fieldConfig: {
      defaults: {
        unit: unit,
        custom: {
          drawStyle: 'line',
          lineWidth: 1,
          fillOpacity: if stacked then 30 else 10,
          showPoints: 'never',
          lineInterpolation: 'linear',
          spanNulls: false,
          stacking: { mode: if stacked then 'normal' else 'none', group: 'A' },
          axisPlacement: 'auto',
          gradientMode: 'none',
        },
        color: { mode: 'palette-classic' },
        thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }] },
        min: 0,
      },
      overrides: [],
    },
    options: {
      legend: { displayMode: 'list', placement: 'bottom', showLegend: true },
      tooltip: { mode: 'multi', sort: 'desc' },
    },
  },

  // Issue 13: what the results files say. Empty until the exporter reads results
  // (and the cost panel until --results.prices-file is set).
  local resultsRow = [
    {
      type: 'row',
      id: 28,
      title: 'Results',
      collapsed: false,
      gridPos: { h: 1, w: 24, x: 0, y: 68 },
      panels: [],
    },
    timeseries(
      29, 'Errored requests by error type (per minute)',
      "Result lines with result errored, by the error's type, read from the results files of ended batches. invalid_request_error means the requests themselves are wrong (AnthropicBatchInvalidRequestsHigh); api_error and overloaded_error are on the API side.",
      { h: 8, w: 12, x: 0, y: 69 }, 'short',
      [target('A', 'sum by (error_type) (rate(anthropic_message_batches_errored_requests_total{%(workspaceSelector)s}[$__rate_interval])) * 60', '{{error_type}}')],
      stacked=true,
    ),
    timeseries(
      30, 'Outputs stopped at max_tokens (share over the last hour)',
      'Per model, the share of succeeded results whose stop_reason is max_tokens: answers cut off at the request\'s limit (AnthropicBatchMaxTokensStopsHigh).',
      { h: 8, w: 12, x: 12, y: 69 }, 'percentunit',
      [target(
        'A',
        'sum by (model) (increase(anthropic_message_batches_stop_reasons_total{%(workspaceSelector)s, stop_reason="max_tokens"}[1h]))\n/\nsum by (model) (increase(anthropic_message_batches_stop_reasons_total{%(workspaceSelector)s}[1h]))',
        '{{model}}'
      )],
    ),
    timeseries(
      31, 'Tokens by model (per minute)',
      'Tokens of succeeded results by model and type: input, output, cache reads and cache writes (5 minute and 1 hour).',
      { h: 8, w: 12, x: 0, y: 77 }, 'short',
      [target('A', 'sum by (model, token_type) (rate(anthropic_message_batches_tokens_total{%(workspaceSelector)s}[$__rate_interval])) * 60', '{{model}} {{token_type}}')],
      stacked=true,
    ),
    timeseries(
      32, 'Estimated cost by model (USD per hour)',
      'Cost estimated from the token counts and the prices in --results.prices-file (empty without it). An estimate: the invoice is authoritative.',
      { h: 8, w: 12, x: 12, y: 77 }, 'currencyUSD',
      [target('A', 'sum by (model) (rate(anthropic_message_batches_estimated_cost_usd_total{%(workspaceSelector)s}[$__rate_interval])) * 3600', '{{model}}')],
      stacked=true,
    ),
  ],

  local fillQueries(panel) =
    panel
    + (if std.objectHas(panel, 'targets') then { targets: [t { expr: t.expr % selectors } for t in panel.targets] } else {})
    + (if std.objectHas(panel, 'panels') then { panels: [fillQueries(p) for p in panel.panels] } else {}),

  local base = import 'dashboards/anthropic-message-batches.libsonnet',

  grafanaDashboards+:: {
    'anthropic-message-batches.json': base {
      uid: cfg.dashboardUID,
      refresh: cfg.dashboardRefresh,
      templating: { list: variables },
      panels: [fillQueries(p) for p in base.panels + resultsRow],
    },
  },
}
