#!/usr/bin/env bash
# The tests expect NATS with JetStream on 127.0.0.1:4222; start it when it is not running.
set -euo pipefail
up() { (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; }
up && exit 0
bin=$(command -v nats-server || echo /usr/sbin/nats-server)
mkdir -p /var/lib/nats-server
start-stop-daemon --start --oknodo --background --exec "$bin" -- \
  -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
for _ in $(seq 1 50); do up && exit 0; sleep 0.2; done
exit 1
