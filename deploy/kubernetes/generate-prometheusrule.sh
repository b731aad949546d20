#!/bin/sh
# Writes prometheusrule.yaml (beside this script) from ../prometheus/alerts.yml,
# so that Kubernetes and plain Prometheus run the very same rules.
#
#   deploy/kubernetes/generate-prometheusrule.sh          # rewrite prometheusrule.yaml
#   deploy/kubernetes/generate-prometheusrule.sh OUTPUT   # write elsewhere ("-" = stdout)
#
# The PrometheusRule's spec has the same shape as a rule file ({groups: [...]}),
# so the transformation is textual: alerts.yml from its `groups:` line on,
# every non-empty line indented by two spaces under `spec:`. DeployTests runs
# this script and fails when the committed prometheusrule.yaml differs.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
source_file="$here/../prometheus/alerts.yml"
output=${1:-"$here/prometheusrule.yaml"}

grep -q '^groups:' "$source_file" || {
    echo "generate-prometheusrule.sh: no top-level 'groups:' line in $source_file" >&2
    exit 1
}

generate() {
    cat <<'EOF'
# GENERATED from deploy/prometheus/alerts.yml by
# deploy/kubernetes/generate-prometheusrule.sh: edit alerts.yml, then rerun the script.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: anthropic-batches-exporter
  labels:
    app.kubernetes.io/name: anthropic-batches-exporter
    app.kubernetes.io/component: alerting-rules
spec:
EOF
    sed -n '/^groups:/,$p' "$source_file" | sed 's/^\(.\)/  \1/'
}

if [ "$output" = "-" ]; then
    generate
else
    generate > "$output.tmp"
    mv "$output.tmp" "$output"
fi
