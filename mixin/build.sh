#!/bin/sh
# Regenerates every file made from the monitoring mixin (list: mixin/render.jsonnet):
#   deploy/prometheus/alerts.yml, deploy/kubernetes/prometheusrule.yaml,
#   deploy/kubernetes/grafana-dashboards.yaml, dashboards/*.json
# Needs `jsonnet` (Debian package jsonnet; scripts/install-deps --test installs it).
set -eu
cd "$(dirname "$0")/.."
command -v jsonnet >/dev/null 2>&1 || {
  echo "mixin/build.sh: jsonnet not found; apt-get install -y jsonnet" >&2
  exit 1
}
jsonnet -S -m . mixin/render.jsonnet
