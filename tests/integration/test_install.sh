#!/usr/bin/env bash
# `cmake --install` puts the binaries, the default config (valid as shipped), the systemd unit,
# sysusers/tmpfiles/udev files and the docs where the configured prefix says.
source "$(dirname "$0")/lib.sh"
DESTDIR="$T/root" cmake --install "$ENGAGED_BIN" >/dev/null
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$ENGAGED_BIN/CMakeCache.txt")
etc=$([ "$prefix" = /usr ] && echo /etc || echo "$prefix/etc")
for f in "$prefix/bin/engaged" "$prefix/bin/engagectl" "$etc/engaged/engaged.conf" \
         "$prefix/lib/systemd/system/engaged.service" "$prefix/lib/sysusers.d/engaged.conf" \
         "$prefix/lib/tmpfiles.d/engaged.conf" "$prefix/lib/udev/rules.d/60-engaged.rules" \
         "$prefix/share/doc/engaged/README.md" "$prefix/share/doc/engaged/config.md"; do
  [ -e "$T/root$f" ] || { echo "missing $f"; exit 1; }
done
[ -d "$T/root$etc/engaged/engaged.conf.d" ]
grep -q "^ExecStart=$prefix/bin/engaged run -c $etc/engaged/engaged.conf$" \
  "$T/root$prefix/lib/systemd/system/engaged.service"
"$T/root$prefix/bin/engaged" check-config -c "$T/root$etc/engaged/engaged.conf"
echo "install ok under prefix $prefix"
