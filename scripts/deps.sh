#!/usr/bin/env bash
# Installs the Debian packages berth, its tests and its demo need, when
# missing. Nothing is fetched from anywhere but Debian's archive and the Go
# module proxy.
set -euo pipefail
# `deps.sh test` adds what only the tests use: HAProxy in front of registry
# replicas, Chromium for the registry UI's browser test, and from the Go
# module proxy versitygw (an S3 server) for the S3 storage tests and the OCI
# distribution-spec conformance suite.
pkgs=(runc crun busybox-static btrfs-progs jq curl iproute2 nftables xz-utils bzip2 zstd skopeo docker-registry)
if [ "${1:-}" = test ]; then
	pkgs+=(haproxy chromium)
	gobin="$(go env GOPATH)/bin"
	if ! command -v versitygw >/dev/null && [ ! -x "$gobin/versitygw" ]; then
		echo "deps: building versitygw from the Go module proxy"
		go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
	fi
	# The OCI distribution-spec conformance suite, pinned, as a test binary.
	if [ ! -x "$gobin/oci-conformance.test" ]; then
		echo "deps: building the OCI conformance suite from the Go module proxy"
		tmp=$(mktemp -d)
		(cd "$tmp" && go mod init conformance >/dev/null 2>&1 &&
			go get github.com/opencontainers/distribution-spec/conformance@v0.0.0-20260831232431-97274622c111 >/dev/null 2>&1 &&
			go test -c -o "$gobin/oci-conformance.test" github.com/opencontainers/distribution-spec/conformance)
		rm -rf "$tmp"
	fi
fi
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing ${missing[*]}; run as root to install them" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d keeps package scripts from starting services (the registry
# package would otherwise try to serve on :5000 on every interface).
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod +x /usr/sbin/policy-rc.d
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
