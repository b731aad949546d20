// The dashboard's panels, as Grafana exports them. Query placeholders, filled in by
// ../dashboards.libsonnet from the mixin's _config: %(workspaceSelector)s (the
// exporter selector and every dashboard variable), %(targetSelector)s (the same
// without workspace, for process_* and build_info) and %(targetLabels)s (the labels
// naming one target, for joins).
{
  uid: 'anthropic-message-batches',
  title: 'Anthropic Message Batches',
  description: "Message Batches API workspaces as seen by anthropic-batches-exporter: batches, requests, results, processing time and the exporter's own health.",
  tags: [
    'anthropic',
    'message-batches',
    'anthropic-batches-exporter',
  ],
  id: null,
  version: 1,
  schemaVersion: 41,
  editable: true,
  graphTooltip: 1,
  fiscalYearStartMonth: 0,
  liveNow: false,
  timezone: 'browser',
  time: {
    from: 'now-24h',
    to: 'now',
  },
  timepicker: {},
  refresh: '1m',
  links: [],
  annotations: {
    list: [
      {
        builtIn: 1,
        datasource: {
          type: 'grafana',
          uid: '-- Grafana --',
        },
        enable: true,
        hide: true,
        iconColor: 'rgba(0, 211, 255, 1)',
        name: 'Annotations & Alerts',
        type: 'dashboard',
      },
    ],
  },
  panels: [
    {
      type: 'row',
      id: 1,
      title: 'Overview',
      collapsed: false,
      gridPos: {
        h: 1,
        w: 24,
        x: 0,
        y: 0,
      },
      panels: [],
    },
    {
      type: 'stat',
      id: 2,
      title: 'Active batches',
      description: 'Batches in_progress or canceling in the latest snapshot.',
      datasource: {
        type: 'prometheus',
        uid: '${datasource}',
      },
      gridPos: {
        h: 4,
        w: 4,
        x: 0,
        y: 1,
      },
      targets: [
        {
          refId: 'A',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: 'sum(anthropic_message_batches{%(workspaceSelector)s, processing_status=~"in_progress|canceling"})',
          editorMode: 'code',
          range: true,
        },
      ],
      fieldConfig: {
        defaults: {
          unit: 'short',
          thresholds: {
            mode: 'absolute',
            steps: [
              {
                color: 'green',
                value: null,
              },
            ],
          },
          mappings: [],
          color: {
            mode: 'thresholds',
          },
        },
        overrides: [],
      },
      options: {
        reduceOptions: {
          calcs: [
            'lastNotNull',
          ],
          fields: '',
          values: false,
        },
        orientation: 'auto',
        textMode: 'value',
        colorMode: 'value',
        graphMode: 'none',
        justifyMode: 'auto',
        wideLayout: true,
        showPercentChange: false,
      },
    },
    {
      type: 'stat',
      id: 3,
      title: 'Requests in flight',
      description: 'Requests of listed batches that are still processing (a batch reports all its requests as processing until the whole batch ends).',
      datasource: {
        type: 'prometheus',
        uid: '${datasource}',
      },
      gridPos: {
        h: 4,
        w: 4,
        x: 4,
        y: 1,
      },
      targets: [
        {
          refId: 'A',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: 'sum(anthropic_message_batches_requests{%(workspaceSelector)s, result="processing"})',
          editorMode: 'code',
          range: true,
        },
      ],
      fieldConfig: {
        defaults: {
          unit: 'short',
          thresholds: {
            mode: 'absolute',
            steps: [
              {
                color: 'green',
                value: null,
              },
            ],
          },
          mappings: [],
          color: {
            mode: 'thresholds',
          },
        },
        overrides: [],
      },
      options: {
        reduceOptions: {
          calcs: [
            'lastNotNull',
          ],
          fields: '',
          values: false,
        },
        orientation: 'auto',
        textMode: 'value',
        colorMode: 'value',
        graphMode: 'none',
        justifyMode: 'auto',
        wideLayout: true,
        showPercentChange: false,
      },
    },
    {
      type: 'stat',
      id: 4,
      title: 'Expired requests (24h)',
      description: 'Requests that ended as expired (their batch hit its 24 h limit) in the last 24 hours, as counted when the exporter saw their batch end.',
      datasource: {
        type: 'prometheus',
        uid: '${datasource}',
      },
      gridPos: {
        h: 4,
        w: 4,
        x: 8,
        y: 1,
      },
      targets: [
        {
          refId: 'A',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: 'round(sum(increase(anthropic_message_batches_ended_requests_total{%(workspaceSelector)s, result="expired"}[24h])))',
          editorMode: 'code',
          range: true,
        },
      ],
      fieldConfig: {
        defaults: {
          unit: 'short',
          thresholds: {
            mode: 'absolute',
            steps: [
              {
                color: 'green',
                value: null,
              },
              {
                color: 'red',
                value: 1,
              },
            ],
          },
          mappings: [],
          color: {
            mode: 'thresholds',
          },
          decimals: 0,
          noValue: '0',
        },
        overrides: [],
      },
      options: {
        reduceOptions: {
          calcs: [
            'lastNotNull',
          ],
          fields: '',
          values: false,
        },
        orientation: 'auto',
        textMode: 'value',
        colorMode: 'value',
        graphMode: 'none',
        justifyMode: 'auto',
        wideLayout: true,
        showPercentChange: false,
      },
    },
    {
      type: 'stat',
      id: 5,
      title: 'Errored requests (24h)',
      description: 'Requests that ended as errored in the last 24 hours.',
      datasource: {
        type: 'prometheus',
        uid: '${datasource}',
      },
      gridPos: {
        h: 4,
        w: 4,
        x: 12,
        y: 1,
      },
      targets: [
        {
          refId: 'A',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: 'round(sum(increase(anthropic_message_batches_ended_requests_total{%(workspaceSelector)s, result="errored"}[24h])))',
          editorMode: 'code',
          range: true,
        },
      ],
      fieldConfig: {
        defaults: {
          unit: 'short',
          thresholds: {
            mode: 'absolute',
            steps: [
              {
                color: 'green',
                value: null,
              },
              {
                color: 'orange',
                value: 1,
              },
            ],
          },
          mappings: [],
          color: {
            mode: 'thresholds',
          },
          decimals: 0,
          noValue: '0',
        },
        overrides: [],
      },
      options: {
        reduceOptions: {
          calcs: [
            'lastNotNull',
          ],
          fields: '',
          values: false,
        },
        orientation: 'auto',
        textMode: 'value',
        colorMode: 'value',
        graphMode: 'none',
        justifyMode: 'auto',
        wideLayout: true,
        showPercentChange: false,
      },
    },
    {
      type: 'stat',
      id: 6,
      title: 'Batches ended (24h)',
      description: 'Batches the exporter saw end in the last 24 hours.',
      datasource: {
        type: 'prometheus',
        uid: '${datasource}',
      },
      gridPos: {
        h: 4,
        w: 4,
        x: 16,
        y: 1,
      },
      targets: [
        {
          refId: 'A',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: 'round(sum(increase(anthropic_message_batches_ended_total{%(workspaceSelector)s}[24h])))',
          editorMode: 'code',
          range: true,
        },
      ],
      fieldConfig: {
        defaults: {
          unit: 'short',
          thresholds: {
            mode: 'absolute',
            steps: [
              {
                color: 'green',
                value: null,
              },
            ],
          },
          mappings: [],
          color: {
            mode: 'thresholds',
          },
          decimals: 0,
          noValue: '0',
        },
        overrides: [],
      },
      options: {
        reduceOptions: {
          calcs: [
            'lastNotNull',
          ],
          fields: '',
          values: false,
        },
        orientation: 'auto',
        textMode: 'value',
        colorMode: 'value',
        graphMode: 'none',
        justifyMode: 'auto',
        wideLayout: true,
        showPercentChange: false,
      },
    },
    {
      type: 'stat',
      id: 7,
      title: 'Exporter polling',
      description: 'Whether the latest poll of every selected workspace succeeded (the worst one is shown).',
      datasource: {
        type: 'prometheus',
        uid: '${datasource}',
      },
      gridPos: {
        h: 4,
        w: 4,
        x: 20,
        y: 1,
      },
      targets: [
        {
          refId: 'A',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: 'min(anthropic_batches_exporter_poll_success{%(workspaceSelector)s})',
          editorMode: 'code',
          range: true,
        },
      ],
      fieldConfig: {
        defaults: {
          unit: 'short',
          thresholds: {
            mode: 'absolute',
            steps: [
              {
                color: 'red',
                value: null,
              },
              {
                color: 'green',
                value: 1,
              },
            ],
          },
          mappings: [
            {
              type: 'value',
              options: {
                '0': {
                  text: 'FAILING',
                  color: 'red',
                  index: 0,
                },
                '1': {
                  text: 'OK',
                  color: 'green',
                  index: 1,
                },
              },
            },
          ],
          color: {
            mode: 'thresholds',
          },
          noValue: 'no data',
        },
        overrides: [],
      },
      options: {
        reduceOptions: {
          calcs: [
            'lastNotNull',
          ],
          fields: '',
          values: false,
        },
        orientation: 'auto',
        textMode: 'value',
        colorMode: 'background',
        graphMode: 'none',
        justifyMode: 'auto',
        wideLayout: true,
        showPercentChange: false,
      },
    },
    {
      type: 'row',
      id: 8,
      title: 'Batches',
      collapsed: false,
      gridPos: {
        h: 1,
        w: 24,
        x: 0,
        y: 5,
      },
      panels: [],
    },
    {
      type: 'timeseries',
      id: 9,
      title: 'Batches by status',
      description: 'Listed batches by processing_status. ended (right axis) counts every ended batch still in the list, which only grows until batches are deleted.',
      datasource: {
        type: 'prometheus',
        uid: '${datasource}',
      },
      gridPos: {
        h: 8,
        w: 12,
        x: 0,
        y: 6,
      },
      targets: [
        {
          refId: 'A',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: 'sum by (processing_status) (anthropic_message_batches{%(workspaceSelector)s})',
          editorMode: 'code',
          range: true,
          legendFormat: '{{processing_status}}',
        },
      ],
      fieldConfig: {
        defaults: {
          unit: 'short',
          custom: {
            drawStyle: 'line',
            lineWidth: 1,
            fillOpacity: 10,
            showPoints: 'never',
            lineInterpolation: 'stepAfter',
            spanNulls: false,
            stacking: {
              mode: 'none',
              group: 'A',
            },
            axisPlacement: 'auto',
            gradientMode: 'none',
          },
          color: {
            mode: 'palette-classic',
          },
          thresholds: {
            mode: 'absolute',
            steps: [
              {
                color: 'green',
                value: null,
              },
            ],
          },
          decimals: 0,
        },
        overrides: [
          {
            matcher: {
              id: 'byName',
              options: 'ended',
            },
            properties: [
              {
                id: 'custom.axisPlacement',
                value: 'right',
              },
              {
                id: 'custom.fillOpacity',
                value: 0,
              },
            ],
          },
        ],
      },
      options: {
        legend: {
          displayMode: 'list',
          placement: 'bottom',
          showLegend: true,
        },
        tooltip: {
          mode: 'multi',
          sort: 'desc',
        },
      },
    },
    {
      type: 'timeseries',
      id: 10,
      title: 'Requests of listed batches by result',
      description: 'Sum of request_counts over the listed batches. Running batches show all their requests as processing; the other results appear when a batch ends.',
      datasource: {
        type: 'prometheus',
        uid: '${datasource}',
      },
      gridPos: {
        h: 8,
        w: 12,
        x: 12,
        y: 6,
      },
      targets: [
        {
          refId: 'A',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: 'sum by (result) (anthropic_message_batches_requests{%(workspaceSelector)s})',
          editorMode: 'code',
          range: true,
          legendFormat: '{{result}}',
        },
      ],
      fieldConfig: {
        defaults: {
          unit: 'short',
          custom: {
            drawStyle: 'line',
            lineWidth: 1,
            fillOpacity: 10,
            showPoints: 'never',
            lineInterpolation: 'stepAfter',
            spanNulls: false,
            stacking: {
              mode: 'normal',
              group: 'A',
            },
            axisPlacement: 'auto',
            gradientMode: 'none',
          },
          color: {
            mode: 'palette-classic',
          },
          thresholds: {
            mode: 'absolute',
            steps: [
              {
                color: 'green',
                value: null,
              },
            ],
          },
          decimals: 0,
        },
        overrides: [],
      },
      options: {
        legend: {
          displayMode: 'list',
          placement: 'bottom',
          showLegend: true,
        },
        tooltip: {
          mode: 'multi',
          sort: 'desc',
        },
      },
    },
    {
      type: 'row',
      id: 11,
      title: 'Ended requests',
      collapsed: false,
      gridPos: {
        h: 1,
        w: 24,
        x: 0,
        y: 14,
      },
      panels: [],
    },
    {
      type: 'timeseries',
      id: 12,
      title: 'Ended requests by result (per minute)',
      description: 'Requests of batches that ended, by result, per minute (averaged over the rate interval). Batches end all at once, so this comes in bursts.',
      datasource: {
        type: 'prometheus',
        uid: '${datasource}',
      },
      gridPos: {
        h: 8,
        w: 12,
        x: 0,
        y: 15,
      },
      targets: [
        {
          refId: 'A',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: 'sum by (result) (rate(anthropic_message_batches_ended_requests_total{%(workspaceSelector)s}[$__rate_interval])) * 60',
          editorMode: 'code',
          range: true,
          legendFormat: '{{result}}',
        },
      ],
      fieldConfig: {
        defaults: {
          unit: 'suffix: req/min',
          custom: {
            drawStyle: 'line',
            lineWidth: 1,
            fillOpacity: 10,
            showPoints: 'never',
            lineInterpolation: 'linear',
            spanNulls: false,
            stacking: {
              mode: 'normal',
              group: 'A',
            },
            axisPlacement: 'auto',
            gradientMode: 'none',
          },
          color: {
            mode: 'palette-classic',
          },
          thresholds: {
            mode: 'absolute',
            steps: [
              {
                color: 'green',
                value: null,
              },
            ],
          },
        },
        overrides: [],
      },
      options: {
        legend: {
          displayMode: 'list',
          placement: 'bottom',
          showLegend: true,
        },
        tooltip: {
          mode: 'multi',
          sort: 'desc',
        },
      },
    },
    {
      type: 'timeseries',
      id: 13,
      title: 'Ended requests by result (share over the last hour)',
      description: 'Share of each result among the requests of batches that ended in the trailing hour. AnthropicBatchErroredRatioHigh fires when errored exceeds 10% for 15 minutes.',
      datasource: {
        type: 'prometheus',
        uid: '${datasource}',
      },
      gridPos: {
        h: 8,
        w: 12,
        x: 12,
        y: 15,
      },
      targets: [
        {
          refId: 'A',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: 'sum by (result) (increase(anthropic_message_batches_ended_requests_total{%(workspaceSelector)s}[1h]))\n/ ignoring (result) group_left\nsum(increase(anthropic_message_batches_ended_requests_total{%(workspaceSelector)s}[1h]))',
          editorMode: 'code',
          range: true,
          legendFormat: '{{result}}',
        },
      ],
      fieldConfig: {
        defaults: {
          unit: 'percentunit',
          custom: {
            drawStyle: 'line',
            lineWidth: 1,
            fillOpacity: 10,
            showPoints: 'never',
            lineInterpolation: 'linear',
            spanNulls: false,
            stacking: {
              mode: 'normal',
              group: 'A',
            },
            axisPlacement: 'auto',
            gradientMode: 'none',
          },
          color: {
            mode: 'palette-classic',
          },
          thresholds: {
            mode: 'absolute',
            steps: [
              {
                color: 'green',
                value: null,
              },
            ],
          },
          min: 0,
          max: 1,
        },
        overrides: [],
      },
      options: {
        legend: {
          displayMode: 'list',
          placement: 'bottom',
          showLegend: true,
        },
        tooltip: {
          mode: 'multi',
          sort: 'desc',
        },
      },
    },
    {
      type: 'row',
      id: 14,
      title: 'Processing duration',
      collapsed: false,
      gridPos: {
        h: 1,
        w: 24,
        x: 0,
        y: 23,
      },
      panels: [],
    },
    {
      type: 'heatmap',
      id: 15,
      title: 'Batch processing duration (heatmap)',
      description: 'ended_at - created_at of the batches that ended, per histogram bucket (60 s to 24 h).',
      datasource: {
        type: 'prometheus',
        uid: '${datasource}',
      },
      gridPos: {
        h: 8,
        w: 12,
        x: 0,
        y: 24,
      },
      targets: [
        {
          refId: 'A',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: 'sum by (le) (increase(anthropic_message_batch_processing_duration_seconds_bucket{%(workspaceSelector)s}[$__rate_interval]))',
          editorMode: 'code',
          range: true,
          legendFormat: '{{le}}',
          format: 'heatmap',
        },
      ],
      fieldConfig: {
        defaults: {
          custom: {
            scaleDistribution: {
              type: 'linear',
            },
            hideFrom: {
              legend: false,
              tooltip: false,
              viz: false,
            },
          },
        },
        overrides: [],
      },
      options: {
        calculate: false,
        cellGap: 1,
        color: {
          mode: 'scheme',
          scheme: 'Oranges',
          scale: 'exponential',
          exponent: 0.5,
          steps: 64,
          fill: 'dark',
          reverse: false,
        },
        yAxis: {
          axisPlacement: 'left',
          unit: 's',
          reverse: false,
        },
        rowsFrame: {
          layout: 'auto',
        },
        filterValues: {
          le: 1e-09,
        },
        legend: {
          show: true,
        },
        tooltip: {
          mode: 'single',
          yHistogram: false,
          showColorScale: false,
        },
        exemplars: {
          color: 'rgba(255,0,255,0.7)',
        },
        cellValues: {
          unit: 'short',
        },
      },
    },
    {
      type: 'timeseries',
      id: 16,
      title: 'Batch processing duration (quantiles over 1h)',
      description: 'Median, 90th and 99th percentile and mean processing time of the batches that ended in the trailing hour, estimated from the histogram buckets.',
      datasource: {
        type: 'prometheus',
        uid: '${datasource}',
      },
      gridPos: {
        h: 8,
        w: 12,
        x: 12,
        y: 24,
      },
      targets: [
        {
          refId: 'A',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: 'histogram_quantile(0.5, sum by (le) (rate(anthropic_message_batch_processing_duration_seconds_bucket{%(workspaceSelector)s}[1h])))',
          editorMode: 'code',
          range: true,
          legendFormat: 'p50',
        },
        {
          refId: 'B',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: 'histogram_quantile(0.9, sum by (le) (rate(anthropic_message_batch_processing_duration_seconds_bucket{%(workspaceSelector)s}[1h])))',
          editorMode: 'code',
          range: true,
          legendFormat: 'p90',
        },
        {
          refId: 'C',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: 'histogram_quantile(0.99, sum by (le) (rate(anthropic_message_batch_processing_duration_seconds_bucket{%(workspaceSelector)s}[1h])))',
          editorMode: 'code',
          range: true,
          legendFormat: 'p99',
        },
        {
          refId: 'D',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: 'sum(rate(anthropic_message_batch_processing_duration_seconds_sum{%(workspaceSelector)s}[1h]))\n/\nsum(rate(anthropic_message_batch_processing_duration_seconds_count{%(workspaceSelector)s}[1h]))',
          editorMode: 'code',
          range: true,
          legendFormat: 'mean',
        },
      ],
      fieldConfig: {
        defaults: {
          unit: 's',
          custom: {
            drawStyle: 'line',
            lineWidth: 1,
            fillOpacity: 10,
            showPoints: 'never',
            lineInterpolation: 'linear',
            spanNulls: false,
            stacking: {
              mode: 'none',
              group: 'A',
            },
            axisPlacement: 'auto',
            gradientMode: 'none',
          },
          color: {
            mode: 'palette-classic',
          },
          thresholds: {
            mode: 'absolute',
            steps: [
              {
                color: 'green',
                value: null,
              },
            ],
          },
          min: 0,
        },
        overrides: [],
      },
      options: {
        legend: {
          displayMode: 'list',
          placement: 'bottom',
          showLegend: true,
        },
        tooltip: {
          mode: 'multi',
          sort: 'desc',
        },
      },
    },
    {
      type: 'row',
      id: 17,
      title: 'Active batches',
      collapsed: false,
      gridPos: {
        h: 1,
        w: 24,
        x: 0,
        y: 32,
      },
      panels: [],
    },
    {
      type: 'table',
      id: 18,
      title: 'Active batches',
      description: 'Every batch in_progress or canceling, from the per-batch series (capped by --batch-metrics.max-batches: see "Snapshot size" below for batches without series). Sorted by time to expiry.',
      datasource: {
        type: 'prometheus',
        uid: '${datasource}',
      },
      gridPos: {
        h: 10,
        w: 24,
        x: 0,
        y: 33,
      },
      targets: [
        {
          refId: 'A',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: 'max by (workspace, batch_id, processing_status) (anthropic_message_batch_info{%(workspaceSelector)s, processing_status=~"in_progress|canceling"})',
          editorMode: 'code',
          instant: true,
          range: false,
          format: 'table',
        },
        {
          refId: 'B',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: 'sum by (workspace, batch_id) (anthropic_message_batch_requests{%(workspaceSelector)s})\nand on (workspace, batch_id)\nanthropic_message_batch_info{%(workspaceSelector)s, processing_status=~"in_progress|canceling"}',
          editorMode: 'code',
          instant: true,
          range: false,
          format: 'table',
        },
        {
          refId: 'C',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: 'time() - max by (workspace, batch_id) (anthropic_message_batch_created_timestamp_seconds{%(workspaceSelector)s})\nand on (workspace, batch_id)\nanthropic_message_batch_info{%(workspaceSelector)s, processing_status=~"in_progress|canceling"}',
          editorMode: 'code',
          instant: true,
          range: false,
          format: 'table',
        },
        {
          refId: 'D',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: 'max by (workspace, batch_id) (anthropic_message_batch_expires_timestamp_seconds{%(workspaceSelector)s}) - time()\nand on (workspace, batch_id)\nanthropic_message_batch_info{%(workspaceSelector)s, processing_status=~"in_progress|canceling"}',
          editorMode: 'code',
          instant: true,
          range: false,
          format: 'table',
        },
      ],
      transformations: [
        {
          id: 'merge',
          options: {},
        },
        {
          id: 'organize',
          options: {
            excludeByName: {
              Time: true,
              'Value #A': true,
            },
            indexByName: {
              batch_id: 0,
              workspace: 1,
              processing_status: 2,
              'Value #B': 3,
              'Value #C': 4,
              'Value #D': 5,
            },
            renameByName: {
              batch_id: 'Batch',
              workspace: 'Workspace',
              processing_status: 'Status',
              'Value #B': 'Requests',
              'Value #C': 'Age',
              'Value #D': 'Expires in',
            },
          },
        },
        {
          id: 'sortBy',
          options: {
            fields: {},
            sort: [
              {
                field: 'Expires in',
                desc: false,
              },
            ],
          },
        },
      ],
      fieldConfig: {
        defaults: {
          custom: {
            align: 'auto',
            cellOptions: {
              type: 'auto',
            },
            filterable: true,
          },
          thresholds: {
            mode: 'absolute',
            steps: [
              {
                color: 'green',
                value: null,
              },
            ],
          },
        },
        overrides: [
          {
            matcher: {
              id: 'byName',
              options: 'Requests',
            },
            properties: [
              {
                id: 'unit',
                value: 'short',
              },
              {
                id: 'decimals',
                value: 0,
              },
            ],
          },
          {
            matcher: {
              id: 'byName',
              options: 'Age',
            },
            properties: [
              {
                id: 'unit',
                value: 'dtdurations',
              },
            ],
          },
          {
            matcher: {
              id: 'byName',
              options: 'Expires in',
            },
            properties: [
              {
                id: 'unit',
                value: 'dtdurations',
              },
              {
                id: 'custom.cellOptions',
                value: {
                  type: 'color-text',
                },
              },
              {
                id: 'thresholds',
                value: {
                  mode: 'absolute',
                  steps: [
                    {
                      color: 'red',
                      value: null,
                    },
                    {
                      color: 'orange',
                      value: 3600,
                    },
                    {
                      color: 'green',
                      value: 7200,
                    },
                  ],
                },
              },
            ],
          },
        ],
      },
      options: {
        showHeader: true,
        cellHeight: 'sm',
        footer: {
          show: false,
          reducer: [
            'sum',
          ],
          fields: '',
        },
        sortBy: [
          {
            displayName: 'Expires in',
            desc: false,
          },
        ],
      },
    },
    {
      type: 'row',
      id: 19,
      title: 'Exporter health',
      collapsed: false,
      gridPos: {
        h: 1,
        w: 24,
        x: 0,
        y: 43,
      },
      panels: [],
    },
    {
      type: 'timeseries',
      id: 20,
      title: 'Poll success',
      description: "1 when the exporter's latest poll succeeded, 0 when it failed. AnthropicBatchesExporterPollFailing fires after 10 minutes at 0.",
      datasource: {
        type: 'prometheus',
        uid: '${datasource}',
      },
      gridPos: {
        h: 8,
        w: 8,
        x: 0,
        y: 44,
      },
      targets: [
        {
          refId: 'A',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: 'anthropic_batches_exporter_poll_success{%(workspaceSelector)s}',
          editorMode: 'code',
          range: true,
          legendFormat: '{{workspace}} {{instance}}',
        },
      ],
      fieldConfig: {
        defaults: {
          unit: 'short',
          custom: {
            drawStyle: 'line',
            lineWidth: 1,
            fillOpacity: 10,
            showPoints: 'never',
            lineInterpolation: 'stepAfter',
            spanNulls: false,
            stacking: {
              mode: 'none',
              group: 'A',
            },
            axisPlacement: 'auto',
            gradientMode: 'none',
          },
          color: {
            mode: 'palette-classic',
          },
          thresholds: {
            mode: 'absolute',
            steps: [
              {
                color: 'green',
                value: null,
              },
            ],
          },
          min: 0,
          max: 1,
          decimals: 0,
        },
        overrides: [],
      },
      options: {
        legend: {
          displayMode: 'list',
          placement: 'bottom',
          showLegend: true,
        },
        tooltip: {
          mode: 'multi',
          sort: 'desc',
        },
      },
    },
    {
      type: 'timeseries',
      id: 21,
      title: 'Snapshot age',
      description: 'Age of the snapshot the exporter serves, against the staleness threshold of AnthropicBatchesExporterSnapshotStale (three poll intervals).',
      datasource: {
        type: 'prometheus',
        uid: '${datasource}',
      },
      gridPos: {
        h: 8,
        w: 8,
        x: 8,
        y: 44,
      },
      targets: [
        {
          refId: 'A',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: 'anthropic_batches_exporter_snapshot_age_seconds{%(workspaceSelector)s}',
          editorMode: 'code',
          range: true,
          legendFormat: '{{workspace}} {{instance}}',
        },
        {
          refId: 'B',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: '3 * anthropic_batches_exporter_poll_interval_seconds{%(workspaceSelector)s}',
          editorMode: 'code',
          range: true,
          legendFormat: 'stale threshold {{workspace}} {{instance}}',
        },
      ],
      fieldConfig: {
        defaults: {
          unit: 's',
          custom: {
            drawStyle: 'line',
            lineWidth: 1,
            fillOpacity: 10,
            showPoints: 'never',
            lineInterpolation: 'linear',
            spanNulls: false,
            stacking: {
              mode: 'none',
              group: 'A',
            },
            axisPlacement: 'auto',
            gradientMode: 'none',
          },
          color: {
            mode: 'palette-classic',
          },
          thresholds: {
            mode: 'absolute',
            steps: [
              {
                color: 'green',
                value: null,
              },
            ],
          },
          min: 0,
        },
        overrides: [
          {
            matcher: {
              id: 'byFrameRefID',
              options: 'B',
            },
            properties: [
              {
                id: 'custom.lineStyle',
                value: {
                  fill: 'dash',
                  dash: [
                    10,
                    10,
                  ],
                },
              },
              {
                id: 'custom.fillOpacity',
                value: 0,
              },
              {
                id: 'color',
                value: {
                  mode: 'fixed',
                  fixedColor: 'red',
                },
              },
            ],
          },
        ],
      },
      options: {
        legend: {
          displayMode: 'list',
          placement: 'bottom',
          showLegend: true,
        },
        tooltip: {
          mode: 'multi',
          sort: 'desc',
        },
      },
    },
    {
      type: 'timeseries',
      id: 22,
      title: 'Poll duration',
      description: 'How long a whole poll (all pages, retries included) takes.',
      datasource: {
        type: 'prometheus',
        uid: '${datasource}',
      },
      gridPos: {
        h: 8,
        w: 8,
        x: 16,
        y: 44,
      },
      targets: [
        {
          refId: 'A',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: 'histogram_quantile(0.5, sum by (le) (rate(anthropic_batches_exporter_poll_duration_seconds_bucket{%(workspaceSelector)s}[$__rate_interval])))',
          editorMode: 'code',
          range: true,
          legendFormat: 'p50',
        },
        {
          refId: 'B',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: 'histogram_quantile(0.9, sum by (le) (rate(anthropic_batches_exporter_poll_duration_seconds_bucket{%(workspaceSelector)s}[$__rate_interval])))',
          editorMode: 'code',
          range: true,
          legendFormat: 'p90',
        },
        {
          refId: 'C',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: 'histogram_quantile(0.99, sum by (le) (rate(anthropic_batches_exporter_poll_duration_seconds_bucket{%(workspaceSelector)s}[$__rate_interval])))',
          editorMode: 'code',
          range: true,
          legendFormat: 'p99',
        },
      ],
      fieldConfig: {
        defaults: {
          unit: 's',
          custom: {
            drawStyle: 'line',
            lineWidth: 1,
            fillOpacity: 10,
            showPoints: 'never',
            lineInterpolation: 'linear',
            spanNulls: false,
            stacking: {
              mode: 'none',
              group: 'A',
            },
            axisPlacement: 'auto',
            gradientMode: 'none',
          },
          color: {
            mode: 'palette-classic',
          },
          thresholds: {
            mode: 'absolute',
            steps: [
              {
                color: 'green',
                value: null,
              },
            ],
          },
          min: 0,
        },
        overrides: [],
      },
      options: {
        legend: {
          displayMode: 'list',
          placement: 'bottom',
          showLegend: true,
        },
        tooltip: {
          mode: 'multi',
          sort: 'desc',
        },
      },
    },
    {
      type: 'timeseries',
      id: 23,
      title: 'API requests by status code',
      description: "Requests the exporter sent to the Message Batches API per minute, by HTTP status (error = no HTTP answer) and kind (full or incremental poll). They spend the workspace's batch rate limit.",
      datasource: {
        type: 'prometheus',
        uid: '${datasource}',
      },
      gridPos: {
        h: 8,
        w: 8,
        x: 0,
        y: 52,
      },
      targets: [
        {
          refId: 'A',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: 'sum by (code, kind) (rate(anthropic_batches_exporter_api_requests_total{%(workspaceSelector)s}[$__rate_interval])) * 60',
          editorMode: 'code',
          range: true,
          legendFormat: '{{code}} {{kind}}',
        },
      ],
      fieldConfig: {
        defaults: {
          unit: 'suffix: req/min',
          custom: {
            drawStyle: 'line',
            lineWidth: 1,
            fillOpacity: 10,
            showPoints: 'never',
            lineInterpolation: 'linear',
            spanNulls: false,
            stacking: {
              mode: 'normal',
              group: 'A',
            },
            axisPlacement: 'auto',
            gradientMode: 'none',
          },
          color: {
            mode: 'palette-classic',
          },
          thresholds: {
            mode: 'absolute',
            steps: [
              {
                color: 'green',
                value: null,
              },
            ],
          },
        },
        overrides: [
          {
            matcher: {
              id: 'byName',
              options: '429 full',
            },
            properties: [
              {
                id: 'color',
                value: {
                  mode: 'fixed',
                  fixedColor: 'orange',
                },
              },
            ],
          },
          {
            matcher: {
              id: 'byName',
              options: '429 incremental',
            },
            properties: [
              {
                id: 'color',
                value: {
                  mode: 'fixed',
                  fixedColor: 'orange',
                },
              },
            ],
          },
        ],
      },
      options: {
        legend: {
          displayMode: 'list',
          placement: 'bottom',
          showLegend: true,
        },
        tooltip: {
          mode: 'multi',
          sort: 'desc',
        },
      },
    },
    {
      type: 'timeseries',
      id: 24,
      title: 'Poll errors by reason',
      description: 'Failed polls per minute by reason (timeout, transport, http_4xx, http_5xx, rate_limited, auth, decode, pagination), and polls cut short because --api.max-pages was reached.',
      datasource: {
        type: 'prometheus',
        uid: '${datasource}',
      },
      gridPos: {
        h: 8,
        w: 8,
        x: 8,
        y: 52,
      },
      targets: [
        {
          refId: 'A',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: 'sum by (reason) (rate(anthropic_batches_exporter_poll_errors_total{%(workspaceSelector)s}[$__rate_interval])) * 60',
          editorMode: 'code',
          range: true,
          legendFormat: '{{reason}}',
        },
        {
          refId: 'B',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: 'sum(rate(anthropic_batches_exporter_api_budget_exhausted_total{%(workspaceSelector)s}[$__rate_interval])) * 60',
          editorMode: 'code',
          range: true,
          legendFormat: 'page budget exhausted',
        },
      ],
      fieldConfig: {
        defaults: {
          unit: 'suffix: /min',
          custom: {
            drawStyle: 'line',
            lineWidth: 1,
            fillOpacity: 10,
            showPoints: 'never',
            lineInterpolation: 'linear',
            spanNulls: false,
            stacking: {
              mode: 'normal',
              group: 'A',
            },
            axisPlacement: 'auto',
            gradientMode: 'none',
          },
          color: {
            mode: 'palette-classic',
          },
          thresholds: {
            mode: 'absolute',
            steps: [
              {
                color: 'green',
                value: null,
              },
            ],
          },
        },
        overrides: [],
      },
      options: {
        legend: {
          displayMode: 'list',
          placement: 'bottom',
          showLegend: true,
        },
        tooltip: {
          mode: 'multi',
          sort: 'desc',
        },
      },
    },
    {
      type: 'timeseries',
      id: 25,
      title: 'Snapshot size',
      description: 'Batches in the latest snapshot, and how many of them have no per-batch series because of --batch-metrics.max-batches (they still count in the aggregates).',
      datasource: {
        type: 'prometheus',
        uid: '${datasource}',
      },
      gridPos: {
        h: 8,
        w: 8,
        x: 16,
        y: 52,
      },
      targets: [
        {
          refId: 'A',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: 'sum by (workspace) (anthropic_batches_exporter_snapshot_batches{%(workspaceSelector)s})',
          editorMode: 'code',
          range: true,
          legendFormat: 'batches {{workspace}}',
        },
        {
          refId: 'B',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: 'sum by (workspace) (anthropic_batches_exporter_batch_metrics_dropped{%(workspaceSelector)s})',
          editorMode: 'code',
          range: true,
          legendFormat: 'without per-batch series {{workspace}}',
        },
      ],
      fieldConfig: {
        defaults: {
          unit: 'short',
          custom: {
            drawStyle: 'line',
            lineWidth: 1,
            fillOpacity: 10,
            showPoints: 'never',
            lineInterpolation: 'stepAfter',
            spanNulls: false,
            stacking: {
              mode: 'none',
              group: 'A',
            },
            axisPlacement: 'auto',
            gradientMode: 'none',
          },
          color: {
            mode: 'palette-classic',
          },
          thresholds: {
            mode: 'absolute',
            steps: [
              {
                color: 'green',
                value: null,
              },
            ],
          },
          min: 0,
          decimals: 0,
        },
        overrides: [],
      },
      options: {
        legend: {
          displayMode: 'list',
          placement: 'bottom',
          showLegend: true,
        },
        tooltip: {
          mode: 'multi',
          sort: 'desc',
        },
      },
    },
    {
      type: 'timeseries',
      id: 26,
      title: 'Exporter process',
      description: 'Resident memory (left) and CPU (right) of the exporter processes that serve the selected workspaces.',
      datasource: {
        type: 'prometheus',
        uid: '${datasource}',
      },
      gridPos: {
        h: 8,
        w: 16,
        x: 0,
        y: 60,
      },
      targets: [
        {
          refId: 'A',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: 'process_resident_memory_bytes{%(targetSelector)s} and on (%(targetLabels)s) anthropic_batches_exporter_poll_success{%(workspaceSelector)s}',
          editorMode: 'code',
          range: true,
          legendFormat: 'memory {{instance}}',
        },
        {
          refId: 'B',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: 'rate(process_cpu_seconds_total{%(targetSelector)s}[$__rate_interval]) and on (%(targetLabels)s) anthropic_batches_exporter_poll_success{%(workspaceSelector)s}',
          editorMode: 'code',
          range: true,
          legendFormat: 'CPU {{instance}}',
        },
      ],
      fieldConfig: {
        defaults: {
          unit: 'bytes',
          custom: {
            drawStyle: 'line',
            lineWidth: 1,
            fillOpacity: 10,
            showPoints: 'never',
            lineInterpolation: 'linear',
            spanNulls: false,
            stacking: {
              mode: 'none',
              group: 'A',
            },
            axisPlacement: 'auto',
            gradientMode: 'none',
          },
          color: {
            mode: 'palette-classic',
          },
          thresholds: {
            mode: 'absolute',
            steps: [
              {
                color: 'green',
                value: null,
              },
            ],
          },
          min: 0,
        },
        overrides: [
          {
            matcher: {
              id: 'byFrameRefID',
              options: 'B',
            },
            properties: [
              {
                id: 'unit',
                value: 'percentunit',
              },
              {
                id: 'custom.axisPlacement',
                value: 'right',
              },
            ],
          },
        ],
      },
      options: {
        legend: {
          displayMode: 'list',
          placement: 'bottom',
          showLegend: true,
        },
        tooltip: {
          mode: 'multi',
          sort: 'desc',
        },
      },
    },
    {
      type: 'stat',
      id: 27,
      title: 'Exporter version',
      description: 'anthropic_batches_exporter_build_info of the exporters serving the selected workspaces.',
      datasource: {
        type: 'prometheus',
        uid: '${datasource}',
      },
      gridPos: {
        h: 8,
        w: 8,
        x: 16,
        y: 60,
      },
      targets: [
        {
          refId: 'A',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: 'count by (version, revision, swift_version) (anthropic_batches_exporter_build_info{%(targetSelector)s} and on (%(targetLabels)s) anthropic_batches_exporter_poll_success{%(workspaceSelector)s})',
          editorMode: 'code',
          instant: true,
          range: false,
          legendFormat: '{{version}} ({{revision}}, Swift {{swift_version}})',
        },
      ],
      fieldConfig: {
        defaults: {
          unit: 'short',
          thresholds: {
            mode: 'absolute',
            steps: [
              {
                color: 'green',
                value: null,
              },
            ],
          },
          mappings: [],
          color: {
            mode: 'thresholds',
          },
        },
        overrides: [],
      },
      options: {
        reduceOptions: {
          calcs: [
            'lastNotNull',
          ],
          fields: '',
          values: false,
        },
        orientation: 'auto',
        textMode: 'name',
        colorMode: 'none',
        graphMode: 'none',
        justifyMode: 'auto',
        wideLayout: true,
        showPercentChange: false,
      },
    },
  ],
}
