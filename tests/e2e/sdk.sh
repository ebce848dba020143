#!/bin/bash
# The SDK as a third party sees it: install into a DESTDIR, build the
# out-of-tree example plugin against that install alone (pkg-config), run it
# through the installed host; per-site builds with PLUGINS=; uninstall.
SUITE=sdk
. "$(dirname "$0")/../lib.sh"

san=""
case "$BUILD" in */asan) san="SAN=1" ;; esac
DEST="$TMP/root"
make -s -C "$ROOT" install BUILD="$BUILD" $san DESTDIR="$DEST" PREFIX=/usr >"$TMP/install.log" 2>&1
expect_eq "make install" "$?" 0
for f in bin/pktpipe include/pktpipe/plugin.h include/pktpipe/wire.h lib/pkgconfig/pktpipe.pc \
	lib/pktpipe/pcap-in.so lib/pktpipe/pcap-out.so share/man/man8/pktpipe.8 \
	share/man/man5/pktpipe.ini.5 share/doc/pktpipe/conf/pcap-copy.ini \
	lib/systemd/system/pktpipe-sender@.service lib/systemd/system/pktpipe-receiver@.service; do
	if [ -e "$DEST/usr/$f" ]; then ok; else fail "not installed: $f"; fi
done
# The man page's key reference is the option tables', not a copy.
man5="$DEST/usr/share/man/man5/pktpipe.ini.5"
"$PKTPIPE" --describe pcap-out --format man > "$TMP/pcap-out.man"
if grep -qF -f "$TMP/pcap-out.man" "$man5" && [ "$(grep -cF -x -f "$TMP/pcap-out.man" "$man5")" -ge "$(wc -l < "$TMP/pcap-out.man")" ]; then
	ok
else
	fail "pktpipe.ini(5) does not carry pcap-out's generated keys"
fi
expect_eq "plugindir variable" \
	"$(PKG_CONFIG_PATH="$DEST/usr/lib/pkgconfig" pkg-config --variable=plugindir pktpipe)" /usr/lib/pktpipe

# The example plugin, from the installed SDK only.
export PKG_CONFIG_PATH="$DEST/usr/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$DEST"
mkdir -p "$TMP/ex"
make -s -C "$ROOT/contrib/example-plugin" O="$TMP/ex" >"$TMP/ex.log" 2>&1
expect_eq "example plugin builds against the install" "$?" 0
unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
expect_eq "example exports only its descriptor" \
	"$(nm -D --defined-only "$TMP/ex/nflog-filter.so" 2>/dev/null | awk '{print $3}' | grep -v '^_' | tr '\n' ' ')" "pp_plugin "

HOST="$DEST/usr/bin/pktpipe"
PP=(--plugin-path "$TMP/ex" --plugin-path "$DEST/usr/lib/pktpipe")
filter_run() { # groups -> packets written
	cat > "$TMP/f.ini" <<INI
[in]
plugin = pcap-in
path = $CORPUS/nflog.pcap

[only]
plugin = nflog-filter
input = in
groups = $1

[out]
plugin = pcap-out
input = only
path = $TMP/f.pcap
INI
	"$HOST" "${PP[@]}" -c "$TMP/f.ini" --stats-json "$TMP/f.json" 2>"$TMP/f.err"
}
want=$(tcpdump -r "$CORPUS/nflog.pcap" 2>/dev/null | wc -l)
filter_run 20
expect_eq "example keeps group 20: exit" "$?" 0
expect_eq "example keeps group 20" "$(stat "$TMP/f.json" out packets_out)" "$want"
filter_run 5
expect_eq "example drops other groups" "$(stat "$TMP/f.json" only dropped filtered)" "$want"
expect_balanced "example" "$TMP/f.json"
out=$("$HOST" "${PP[@]}" --describe nflog-filter)
expect_contains "example describe" "$out" "groups (list of int, default: none)"

# Per-site builds: only the named plugins, and a host without the others.
SITE="$TMP/site"
out=$(make -C "$ROOT" BUILD="$SITE" PLUGINS="pcap-in pcap-out nosuch" all 2>&1)
expect_eq "site build" "$?" 0
expect_contains "site build report" "$out" "plugins built: pcap-in pcap-out"
expect_contains "site build skip" "$out" "plugin skipped: nosuch: no such plugin folder"
expect_eq "site plugins" "$(cd "$SITE/plugins" && ls | tr '\n' ' ')" "pcap-in.so pcap-out.so "
if ldd "$SITE/pktpipe" | grep -qE 'libzmq|libpcap|libz\.|netfilter'; then
	fail "the host links a plugin's library"
else
	ok
fi
printf '[in]\nplugin = zmq-in\nendpoint = tcp://127.0.0.1:1\n[out]\nplugin = pcap-out\ninput = in\npath = /dev/null\n' > "$TMP/absent.ini"
err=$("$SITE/pktpipe" --check -c "$TMP/absent.ini" 2>&1)
expect_eq "absent plugin: exit" "$?" 2
expect_eq "absent plugin: message" "$err" \
	"$TMP/absent.ini:2: plugin 'zmq-in' not found (looked for zmq-in.so in $SITE/plugins)"

make -s -C "$ROOT" uninstall BUILD="$BUILD" DESTDIR="$DEST" PREFIX=/usr >/dev/null 2>&1
expect_eq "uninstall leaves no file" "$(find "$DEST" -type f | wc -l)" 0

finish
