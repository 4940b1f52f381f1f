#!/usr/bin/env bash
# The README's demo: start berth's daemon if none answers, build the busybox
# base image offline from busybox-static, run containers from it, and reach
# a web server in one from the host.
set -euo pipefail
cd "$(dirname "$0")/.."
berth=bin/berth
host=${BERTH_HOST:-unix:///run/berth/berth.sock}
log=${BERTH_LOG:-/var/log/berth-daemon.log}

if ! $berth -H "$host" version >/dev/null 2>&1; then
	echo "+ starting berth daemon (log: $log)"
	setsid $berth daemon -H "$host" >"$log" 2>&1 </dev/null &
	for _ in $(seq 1 100); do
		$berth -H "$host" version >/dev/null 2>&1 && break
		sleep 0.1
	done
	$berth -H "$host" version >/dev/null || { echo "daemon did not come up; see $log" >&2; exit 1; }
fi

run() { echo "+ berth $*"; $berth -H "$host" "$@"; }

if ! $berth -H "$host" image inspect busybox:latest >/dev/null 2>&1; then
	echo "+ bin/mkbusybox | berth import -c 'CMD [\"sh\"]' - busybox:latest"
	bin/mkbusybox | $berth -H "$host" import -c 'CMD ["sh"]' -m "busybox base image, built from busybox-static" - busybox:latest
fi
run images
run history busybox
run run --rm busybox echo "hello from a berth container"

# A web server in a container, reached from the host on its own address.
$berth -H "$host" rm -f demo-web >/dev/null 2>&1 || true
run run -d --name demo-web busybox sh -c 'mkdir -p /www && echo "<h1>served by berth</h1>" > /www/index.html && exec httpd -f -p 80 -h /www'
ip=$($berth -H "$host" inspect -f '{{.NetworkSettings.IPAddress}}' demo-web)
echo "+ curl http://$ip/"
for _ in $(seq 1 50); do curl -fsS "http://$ip/" && break; sleep 0.1; done
run ps
run rm -f demo-web
run version
