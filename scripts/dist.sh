#!/usr/bin/env bash
# `make dist`: builds mhanode and mhactl (static, version stamped) and
# packs them with the systemd unit, the example configuration, shell
# completions and the docs into
#   out/dist/mharaft_<debversion>_<arch>.deb          (dpkg-deb)
#   out/dist/mharaft-<version>-linux-<arch>.tar.gz    (same tree + setup.sh)
# dist/doc.go lists what goes where and with which mode.
#
# Environment: OUT (default out/dist), VERSION (default from git: the tag
# v* it describes, else a Go pseudo-version of HEAD), GOARCH (default the
# host's), GO (default go).
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
OUT=${OUT:-out/dist}
GOARCH=${GOARCH:-$($GO env GOARCH)}
export GOOS=linux GOARCH CGO_ENABLED=0

buildvcs=true
if ! git rev-parse --git-dir >/dev/null 2>&1; then
	# A source tree without git: no commit to name or stamp.
	: "${VERSION:?not a git checkout: set VERSION (make dist VERSION=v1.2.3)}"
	buildvcs=false
	export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(date +%s)}
elif [[ -z ${VERSION:-} ]]; then
	if VERSION=$(git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null); then
		:
	else
		# v0.0.0-<commit time UTC>-<12-hex commit>, as Go names an untagged
		# commit; -dirty when git status (untracked files too, as Go) is not empty.
		VERSION="v0.0.0-$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S)-$(git rev-parse --short=12 HEAD)"
		if [[ -n $(git status --porcelain) ]]; then
			VERSION+="-dirty"
		fi
	fi
fi
# Debian's version: no leading v, the first - becomes + and the others .
# (v1.2.3-4-gabc-dirty -> 1.2.3+4.gabc.dirty); it must start with a digit.
DEBVERSION=$(sed -e 's/^v//' -e 's/-/+/' -e 's/-/./g' <<<"$VERSION")
[[ $DEBVERSION =~ ^[0-9] ]] || { echo "dist: version $VERSION does not start with a digit" >&2; exit 1; }
case $GOARCH in
amd64 | arm64 | riscv64 | ppc64le | s390x) DEBARCH=${GOARCH/ppc64le/ppc64el} ;;
386) DEBARCH=i386 ;;
arm) DEBARCH=armhf ;;
*) echo "dist: no Debian architecture for GOARCH=$GOARCH" >&2; exit 1 ;;
esac

# Every file's time is the commit's (dpkg-deb reads SOURCE_DATE_EPOCH;
# tar and gzip -n below): two builds of one commit are the same bytes.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"

# The binaries: static (CGO_ENABLED=0), the version in api.BuildVersion,
# the commit in the build info (-buildvcs=true overrides a GOFLAGS that
# turns it off; false outside git).
$GO build -trimpath -buildvcs=$buildvcs \
	-ldflags "-s -w -X github.com/mharaft/mharaft/api.BuildVersion=$VERSION" \
	-o "$work/bin/" ./cmd/mhanode ./cmd/mhactl
install -D -m 0755 "$work/bin/mhanode" "$root/usr/bin/mhanode"
install -D -m 0755 "$work/bin/mhactl" "$root/usr/bin/mhactl"

install -D -m 0644 dist/mhanode.service "$root/usr/lib/systemd/system/mhanode.service"
install -d -m 0750 "$root/etc/mharaft"
install -m 0640 dist/mhanode.flags "$root/etc/mharaft/mhanode.flags"

doc=$root/usr/share/doc/mharaft
install -D -m 0644 -t "$doc" README.md docs/INSTALL.md docs/MIGRATION.md docs/SECURITY.md \
	docs/ARCHITECTURE.md config/REFERENCE.md cmd/mhactl/EXIT_CODES.md
install -D -m 0644 -t "$doc/examples" dist/app1.conf dist/mhanode.flags

# Shell completions, from the binaries just built (cobra's generators);
# only when they run here (a cross build skips them).
if "$work/bin/mhactl" completion bash >/dev/null 2>&1; then
	install -d "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
		"$root/usr/share/fish/vendor_completions.d"
	for cmd in mhactl mhanode; do
		"$work/bin/$cmd" completion bash >"$root/usr/share/bash-completion/completions/$cmd"
		"$work/bin/$cmd" completion zsh >"$root/usr/share/zsh/vendor-completions/_$cmd"
		"$work/bin/$cmd" completion fish >"$root/usr/share/fish/vendor_completions.d/$cmd.fish"
	done
	chmod 0644 "$root"/usr/share/*/*completion*/*
fi

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# The .deb: the tree, owned by root (--root-owner-group; postinst gives
# /etc/mharaft to the mharaft group), with control, conffiles and the
# maintainer scripts.
deb=$OUT/mharaft_${DEBVERSION}_${DEBARCH}.deb
mkdir -p "$root/DEBIAN"
install -m 0755 dist/debian/postinst dist/debian/prerm dist/debian/postrm "$root/DEBIAN/"
echo /etc/mharaft/mhanode.flags >"$root/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: mharaft
Version: $DEBVERSION
Architecture: $DEBARCH
Maintainer: mharaft maintainers <root@localhost>
Installed-Size: $size
Depends: adduser
Section: admin
Priority: optional
Description: failover manager for MySQL/MariaDB replication decided by a Raft group
 mharaft replaces MHA for MySQL: three or more managers (mhanode) form a
 Raft group, declare a master dead only when a majority cannot reach it,
 and run MHA's recovery (saving the dead master's binlog tail, applying
 the missing events, promoting a replica) under a replicated lock.
 .
 This package holds mhanode with its systemd unit, mhactl (the operator's
 command line), an example configuration and the documentation.
CONTROL
dpkg-deb --root-owner-group -Zgzip --build "$root" "$deb" >/dev/null
rm -rf "$root/DEBIAN"

# The tarball: the same tree under mharaft-<version>-linux-<arch>/, with
# postinst as setup.sh (run it after copying usr/ and etc/ to /).
name=mharaft-${VERSION#v}-linux-$GOARCH
mv "$root" "$work/$name"
install -m 0755 dist/debian/postinst "$work/$name/setup.sh"
install -m 0644 docs/INSTALL.md "$work/$name/INSTALL.md"
tar -C "$work" --owner=root --group=root --numeric-owner --sort=name --mtime="@$SOURCE_DATE_EPOCH" -cf - "$name" |
	gzip -n >"$OUT/$name.tar.gz"

echo "$deb"
echo "$OUT/$name.tar.gz"
