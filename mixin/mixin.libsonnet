// The anthropic-batches-exporter monitoring mixin: alerts and dashboard.
//   prometheusAlerts    the alerting rules (`groups:`)
//   grafanaDashboards   { 'anthropic-message-batches.json': dashboard }
// mixin/render.jsonnet turns them into the files shipped in deploy/ and dashboards/.
(import 'config.libsonnet') +
(import 'alerts.libsonnet') +
(import 'dashboards.libsonnet')
