#!/bin/sh
# Installs rosettad in system mode: binaries, systemd units, PAM policy, tmpfiles, an example config.
#
#   deploy/install.sh [--prefix DIR] [--from DIR] [--root DIR] [--dry-run]
#
#   --prefix DIR   where binaries and docs go (default /usr/local: DIR/bin, DIR/share/doc/rosettad);
#                  the units' ExecStart is rewritten to match
#   --from DIR     the built binaries (default .build/release, relative to the checkout)
#   --root DIR     install under DIR instead of / (a staging tree: no groups, no systemctl)
#   --dry-run      print what would be done, change nothing
#
# Never overwrites an existing /etc/rosettad/rosettad.yaml or /etc/pam.d/rosettad (the admin's
# config and policy); units, binaries, tmpfiles and docs are replaced. It does not enable or start
# anything: the commands to do so are printed at the end.
set -eu

prefix=/usr/local
root=
dry_run=0
checkout=$(cd "$(dirname "$0")/.." && pwd)
from="$checkout/.build/release"

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit "$1"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || usage 2; prefix=$2; shift 2 ;;
        --prefix=*) prefix=${1#--prefix=}; shift ;;
        --from) [ $# -ge 2 ] || usage 2; from=$2; shift 2 ;;
        --from=*) from=${1#--from=}; shift ;;
        --root) [ $# -ge 2 ] || usage 2; root=$2; shift 2 ;;
        --root=*) root=${1#--root=}; shift ;;
        --dry-run) dry_run=1; shift ;;
        -h|--help) usage 0 ;;
        *) echo "install.sh: unknown option $1" >&2; usage 2 ;;
    esac
done

case "$prefix" in /*) ;; *) echo "install.sh: --prefix must be an absolute path" >&2; exit 2 ;; esac
for binary in rosettad rosetta; do
    if [ ! -x "$from/$binary" ]; then
        echo "install.sh: $from/$binary not found; build first (swift build -c release) or pass --from" >&2
        exit 1
    fi
done
if [ -z "$root" ] && [ "$dry_run" = 0 ] && [ "$(id -u)" != 0 ]; then
    echo "install.sh: run as root (or use --root DIR / --dry-run)" >&2
    exit 1
fi

run() {
    if [ "$dry_run" = 1 ]; then echo "would run: $*"; else "$@"; fi
}

# install_file MODE SOURCE TARGET: installs (replacing) a file under the root.
install_file() {
    run install -D -m "$1" "$2" "$root$3"
    [ "$dry_run" = 1 ] || echo "installed $3"
}

# install_unit NAME: a unit with the binary path rewritten for the prefix.
install_unit() {
    if [ "$dry_run" = 1 ]; then
        echo "would install /etc/systemd/system/$1 (ExecStart $prefix/bin/rosettad)"
        return
    fi
    install -d -m 0755 "$root/etc/systemd/system"
    sed "s#/usr/local/bin/rosettad#$prefix/bin/rosettad#g; s#/usr/local/share/doc/rosettad#$prefix/share/doc/rosettad#g" \
        "$checkout/deploy/$1" > "$root/etc/systemd/system/$1"
    chmod 0644 "$root/etc/systemd/system/$1"
    echo "installed /etc/systemd/system/$1"
}

# install_config MODE SOURCE TARGET: only when the target does not exist yet.
install_config() {
    if [ -e "$root$3" ]; then
        echo "kept existing $3 (the shipped version is $2)"
    else
        install_file "$1" "$2" "$3"
    fi
}

install_file 0755 "$from/rosettad" "$prefix/bin/rosettad"
install_file 0755 "$from/rosetta" "$prefix/bin/rosetta"
install_unit rosettad.service
install_unit rosettad.socket
install_file 0644 "$checkout/deploy/tmpfiles.d/rosettad.conf" /usr/lib/tmpfiles.d/rosettad.conf
install_config 0644 "$checkout/deploy/pam.d/rosettad" /etc/pam.d/rosettad
install_config 0644 "$checkout/deploy/rosettad.yaml" /etc/rosettad/rosettad.yaml
install_file 0644 "$checkout/docs/admin.md" "$prefix/share/doc/rosettad/admin.md"

if [ -z "$root" ]; then
    # The default PAM policy's group and the example config's admin_group (which must exist).
    run groupadd -f rosetta
    run groupadd -f rosetta-admin
    run systemd-tmpfiles --create rosettad.conf
    if [ -d /run/systemd/system ]; then run systemctl daemon-reload; fi
fi

cat <<EOF

Next:
  edit /etc/rosettad/rosettad.yaml (providers, models) and /etc/pam.d/rosettad (who may enable)
  usermod -aG rosetta USER            # for each user allowed by the default policy
  systemctl enable --now rosettad.socket rosettad.service
  journalctl -u rosettad -f           # the daemon's log
EOF
