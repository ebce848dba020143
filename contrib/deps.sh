#!/bin/sh
# Install the Debian packages pktpipe's build, tests and demo need.
# Idempotent and quiet when everything is there already.
set -eu

packages="build-essential pkg-config clang libltdl-dev libinih-dev libpcap-dev
libzmq3-dev libnetfilter-log-dev zlib1g-dev libzstd-dev
tcpdump tshark python3 python3-zmq iptables nftables iproute2 iputils-ping
procps psmisc valgrind"

missing=""
for p in $packages; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
# Node.js may come from elsewhere than Debian (with npm bundled): take
# whatever provides the commands.
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "deps: missing Debian packages:$missing" >&2
	echo "deps: run 'make deps' as root (or install them with apt-get)" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
