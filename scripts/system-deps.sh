#!/usr/bin/env bash
# Debian packages the tests need (installed only when missing; CI runs as root).
#   nats-server  extra NATS servers (3-node JetStream cluster, outages) started by tests
#   iproute2     `ip netns` for the network-namespace tests
#   prometheus   `promtool`, which checks and unit-tests the alert rules of k8s/overlays/monitoring
#   chromium     the headless browser that opens report.html and the experiment index
#                (test/report-browser.test.ts)
set -euo pipefail
missing=()
command -v nats-server >/dev/null 2>&1 || [[ -x /usr/sbin/nats-server ]] || missing+=(nats-server)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
if (( ${#missing[@]} )); then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
