#!/usr/bin/env bash
# Install videodrop as a system service, from this checkout:
#
#   sudo deploy/install.sh
#
# creates the system user `videodrop`, the folders /srv/videodrop/{inbox,media,stream-links}, a
# virtualenv /opt/videodrop/venv with the package installed (pip install from this
# checkout), /etc/videodrop/videodrop.env from deploy/videodrop.env.example when there is
# none (with a freshly generated admin token), and the systemd units in
# /etc/systemd/system; then `systemctl daemon-reload` when systemd is running.
# Running it again upgrades the package and the units and keeps the env file and data:
# it is also the upgrade command (see docs/operations.md).
#
# Environment (defaults in brackets):
#   DESTDIR    stage everything under this root instead of / (packaging, tests): no user
#              is created, nothing is chowned, systemctl is never run []
#   PREFIX     where the virtualenv and docs go [/opt/videodrop]
#   SRV        data root holding inbox/ and media/ [/srv/videodrop]
#   ETC        configuration folder [/etc/videodrop]
#   UNITDIR    systemd unit folder [/etc/systemd/system]
#   PYTHON     Python >= 3.11 to build the virtualenv with [python3]
#   VIDEODROP_USER  the service account [videodrop]
#   WRITERS_GROUP   the group of the accounts that drop files into the inbox [videodrop-writers]
#   PIP_INSTALL_ARGS  extra arguments for `pip install` (e.g. --no-deps) []
# The units name /opt/videodrop, /srv/videodrop and /etc/videodrop; other PREFIX, SRV or
# ETC values are written into the installed copies.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/opt/videodrop}
SRV=${SRV:-/srv/videodrop}
ETC=${ETC:-/etc/videodrop}
UNITDIR=${UNITDIR:-/etc/systemd/system}
PYTHON=${PYTHON:-python3}
USER_NAME=${VIDEODROP_USER:-videodrop}
WRITERS=${WRITERS_GROUP:-videodrop-writers}
read -r -a PIP_EXTRA <<<"${PIP_INSTALL_ARGS:-}"

say() { printf 'install: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

staged=false
[[ -n $DESTDIR ]] && staged=true
if ! $staged && [[ $(id -u) != 0 ]]; then
    die "run as root (sudo $0), or set DESTDIR to stage the files under another root"
fi

# --- prerequisites -----------------------------------------------------------------------
command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found: apt-get install python3 python3-venv"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "videodrop needs Python >= 3.11; $PYTHON is $("$PYTHON" -V 2>&1)"
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null \
    || die "the Python venv module is missing: apt-get install python3-venv"
if ! command -v ffprobe >/dev/null 2>&1; then
    say "warning: ffprobe not found; the probers need it (apt-get install ffmpeg)"
fi

# --- the service account -----------------------------------------------------------------
own=false   # chown what we create to the service account?
if ! $staged; then
    if ! getent passwd "$USER_NAME" >/dev/null; then
        say "creating system user $USER_NAME"
        useradd --system --user-group --home-dir "$SRV" --no-create-home \
            --shell /usr/sbin/nologin --comment "videodrop service" "$USER_NAME"
    fi
    if ! getent group "$WRITERS" >/dev/null; then
        say "creating group $WRITERS (the inbox's writers join it, never $USER_NAME)"
        groupadd --system "$WRITERS"
    fi
    usermod -a -G "$WRITERS" "$USER_NAME"  # the service reads and moves what writers drop
    own=true
fi

# --- folders ------------------------------------------------------------------------------
# inbox: writers (sftp users, cameras' upload account) join group $WRITERS, which the
# service account is in too; setgid keeps that group on what they write, so the probers can
# read and move it, and a default ACL lets group $USER_NAME read it once it is stored.
# media and stream-links: group $USER_NAME only (the service, and www-data for a front
# proxy that serves files itself): a writer can neither list the links (named by tokens)
# nor read stored videos, nor reach a file it dropped once it is stored.
install -d -m 0755 "$DESTDIR$SRV"
install -d -m 2770 "$DESTDIR$SRV/inbox"
install -d -m 2750 "$DESTDIR$SRV/media" "$DESTDIR$SRV/stream-links"
install -d -m 0755 "$DESTDIR$ETC" "$DESTDIR$PREFIX" "$DESTDIR$UNITDIR"
if $own; then
    chown "$USER_NAME:$WRITERS" "$DESTDIR$SRV/inbox"
    chown "$USER_NAME:$USER_NAME" "$DESTDIR$SRV/media" "$DESTDIR$SRV/stream-links"
    if command -v setfacl >/dev/null 2>&1; then
        # a file renamed into the store keeps its writer and group: this lets group
        # $USER_NAME (a front proxy) read it there
        setfacl -d -m "g:$USER_NAME:r" "$DESTDIR$SRV/inbox" \
            || say "warning: no default ACL on the inbox (file system without ACLs?)"
    else
        say "warning: setfacl not found (apt-get install acl): files stored from the inbox" \
            "keep group $WRITERS, which a front proxy serving files itself cannot read"
    fi
fi

# --- the virtualenv -----------------------------------------------------------------------
venv="$DESTDIR$PREFIX/venv"
if [[ ! -x $venv/bin/python ]]; then
    say "creating the virtualenv $venv"
    "$PYTHON" -m venv "$venv"
fi
# Build from a clean copy of the sources: pip builds in the source tree, and a stale
# build/ folder there could put modules deleted since into the installed package.
say "installing videodrop from $REPO into $venv"
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
tar -C "$REPO" --exclude=__pycache__ --exclude='*.pyc' -cf - pyproject.toml README.md \
    videodrop ingest prober api | tar -C "$src" -xf -
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade \
    "${PIP_EXTRA[@]}" "$src"
[[ -x $venv/bin/videodrop ]] || die "pip did not install the videodrop command into $venv/bin"
install -m 0644 "$REPO/README.md" "$DESTDIR$PREFIX/README.md"
install -d -m 0755 "$DESTDIR$PREFIX/docs"
install -m 0644 "$REPO"/docs/*.md "$DESTDIR$PREFIX/docs/"

# --- configuration ------------------------------------------------------------------------
envfile="$DESTDIR$ETC/videodrop.env"
if [[ -e $envfile ]]; then
    say "keeping $ETC/videodrop.env"
else
    token=$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(32))')
    tmp=$(mktemp "$DESTDIR$ETC/.videodrop.env.XXXXXX")
    sed -e "s|/srv/videodrop|$SRV|g" \
        -e "s|^# *VIDEODROP_ADMIN_TOKEN=.*|VIDEODROP_ADMIN_TOKEN=$token|" \
        "$REPO/deploy/videodrop.env.example" >"$tmp"
    grep -q '^VIDEODROP_ADMIN_TOKEN=' "$tmp" || echo "VIDEODROP_ADMIN_TOKEN=$token" >>"$tmp"
    chmod 0640 "$tmp"
    if $own; then chown "root:$USER_NAME" "$tmp"; fi
    mv "$tmp" "$envfile"
    say "wrote $ETC/videodrop.env with a new admin token (edit the URLs in it)"
fi

# --- units --------------------------------------------------------------------------------
changed=0
for unit in "$REPO"/systemd/*.service "$REPO"/systemd/*.target; do
    target="$DESTDIR$UNITDIR/$(basename "$unit")"
    tmp=$(mktemp "$DESTDIR$UNITDIR/.unit.XXXXXX")
    sed -e "s|/opt/videodrop|$PREFIX|g" -e "s|/srv/videodrop|$SRV|g" \
        -e "s|/etc/videodrop|$ETC|g" -e "s|^User=videodrop$|User=$USER_NAME|" \
        -e "s|^Group=videodrop$|Group=$USER_NAME|" "$unit" >"$tmp"
    chmod 0644 "$tmp"
    if cmp -s "$tmp" "$target"; then
        rm -f "$tmp"
    else
        mv "$tmp" "$target"
        changed=$((changed + 1))
        say "installed $UNITDIR/$(basename "$unit")"
    fi
done

if $staged; then
    say "staged under $DESTDIR (no systemctl)"
elif [[ -d /run/systemd/system ]]; then
    if ((changed)); then systemctl daemon-reload; fi
else
    say "systemd is not running here: run 'systemctl daemon-reload' where it is"
fi

cat >&2 <<EOF
install: done. Next:
  1. edit $ETC/videodrop.env (database and broker URLs, VIDEODROP_BASE_URL)
  2. sudo -u $USER_NAME sh -c 'set -a; . $ETC/videodrop.env; exec $PREFIX/venv/bin/videodrop migrate'
  3. sudo -u $USER_NAME sh -c 'set -a; . $ETC/videodrop.env; exec $PREFIX/venv/bin/videodrop health'
  4. systemctl enable --now videodrop.target videodrop-prober@{1..4} videodrop-derive@1
  5. with retention rules (VIDEODROP_RETENTION_FILE in the env file):
     systemctl enable --now videodrop-retention
EOF
