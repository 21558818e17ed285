#!/bin/sh
# System packages the netns data plane (drivers/netns, tests/dataplane, bench/dataplane.py)
# needs on a Debian 12 machine. Run as root. Idempotent: installs only what is missing.
#   iproute2 (ip, tc, bridge), nftables (nft), iputils-ping (ping), iperf3, frr (zebra,
#   bgpd, vtysh), procps (ps, sysctl)
set -eu
PACKAGES="iproute2 nftables iputils-ping iperf3 frr procps"
missing=""
for pkg in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $pkg"
    fi
done
if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing
fi
# The frr package's own service start is blocked here (no systemd); the driver starts its
# daemons by hand, as user frr, inside the lab's namespaces.
command -v wrk >/dev/null 2>&1 || apt-get install -y --no-install-recommends wrk
