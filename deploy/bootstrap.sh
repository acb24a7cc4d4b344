#!/usr/bin/env bash
# Make this machine able to run videodrop, installing only what is missing:
#   ffmpeg (ffprobe), PostgreSQL and RabbitMQ server binaries (skipped when the configured
#   VIDEODROP_DATABASE_URL / VIDEODROP_AMQP_URL already answer), python3-venv, the .venv
#   virtualenv and the package in it (`pip install -e '.[dev]'`, redone when pyproject.toml
#   is newer than .venv/.installed).
# OS packages come from apt-get, as root or with passwordless sudo; otherwise it stops and
# says what to install. Idempotent, and quick when everything is there.
# With --test it also installs the tools the test suite drives (sshd, sftp, rsync, curl, setfacl).
# Environment: PYTHON (default python3), VIDEODROP_FFPROBE, VIDEODROP_DATABASE_URL,
# VIDEODROP_AMQP_URL.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}
DATABASE_URL=${VIDEODROP_DATABASE_URL:-postgresql://localhost/videodrop}
AMQP_URL=${VIDEODROP_AMQP_URL:-amqp://guest:guest@localhost:5672/%2F}

say() { printf 'bootstrap: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

packages=()   # apt packages to install
reasons=()    # what each one is for, for the message when we cannot install

want() { packages+=("$1"); reasons+=("$2"); }

have_any() {  # have_any FILE_OR_COMMAND... : true when one of them exists
    local candidate
    for candidate in "$@"; do
        if [[ $candidate == /* ]]; then
            [[ -x $candidate ]] && return 0
        elif command -v "$candidate" >/dev/null 2>&1; then
            return 0
        fi
    done
    return 1
}

answers() {  # answers postgres|amqp URL : the server at URL answers (needs python3)
    command -v "$PYTHON" >/dev/null 2>&1 && "$PYTHON" -m deploy.devstack check "$1" "$2"
}

# --- what is missing -------------------------------------------------------------------
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    want python3 "Python 3 ($PYTHON)"
    want python3-venv "the Python venv module"
elif [[ ! -x .venv/bin/python ]] && ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    want python3-venv "the Python venv module (to create .venv)"
fi

ffprobe=${VIDEODROP_FFPROBE:-ffprobe}
if ! have_any "$ffprobe" || ! have_any ffmpeg; then
    want ffmpeg "ffprobe/ffmpeg"
fi

pg_ctls=(/usr/lib/postgresql/*/bin/pg_ctl)
if ! have_any "${pg_ctls[@]}" pg_ctl && ! answers postgres "$DATABASE_URL"; then
    want postgresql "PostgreSQL (nothing answers at VIDEODROP_DATABASE_URL)"
fi

if ! have_any rabbitmq-server /usr/sbin/rabbitmq-server /usr/lib/rabbitmq/bin/rabbitmq-server \
        && ! answers amqp "$AMQP_URL"; then
    want rabbitmq-server "RabbitMQ (nothing answers at VIDEODROP_AMQP_URL)"
fi

# `make test` also needs the real writers the ingest tests drive: sshd/sftp, rsync, curl.
if [[ ${1:-} == --test ]]; then
    have_any /usr/sbin/sshd sshd || want openssh-server "sshd (the SFTP ingest tests)"
    have_any sftp ssh-keygen || want openssh-client "sftp and ssh-keygen (the SFTP ingest tests)"
    have_any rsync || want rsync "rsync (the rsync ingest test)"
    have_any curl || want curl "curl (upload tests)"
    have_any systemd-analyze || want systemd "systemd-analyze (the unit file checks)"
    have_any nginx /usr/sbin/nginx || want nginx-light "nginx (the X-Accel-Redirect test, make bench)"
    have_any wrk || want wrk "wrk (make bench)"
    have_any strace || want strace "strace (the sendfile test)"
    have_any setfacl || want acl "setfacl (the inbox permission tests: install.sh's default ACL)"
    have_any /usr/bin/time || want time "GNU time (a child's own peak memory, tests and make bench)"
    have_any /usr/bin/chromium chromium || want chromium "Chromium (browser tests)"
fi

# --- install it ------------------------------------------------------------------------
if ((${#packages[@]})); then
    if [[ $(id -u) == 0 ]]; then
        sudo=()
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo=(sudo -n)
    else
        sudo=(missing)
    fi
    if [[ ${sudo[0]:-} == missing ]] || ! command -v apt-get >/dev/null 2>&1; then
        for i in "${!packages[@]}"; do
            say "missing: ${reasons[$i]}"
        done
        die "install them, then run this again:  sudo apt-get install ${packages[*]}"
    fi
    say "installing ${packages[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${packages[@]}"
fi

# --- the virtualenv --------------------------------------------------------------------
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    die "$PYTHON not found: install Python >= 3.11 (apt-get install python3 python3-venv)" \
        "or set PYTHON=/path/to/python3.11"
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    die "videodrop needs Python >= 3.11; $PYTHON is $("$PYTHON" -V 2>&1). Set PYTHON=python3.11"
fi
if [[ ! -x .venv/bin/python ]]; then
    say "creating .venv"
    "$PYTHON" -m venv .venv
fi
if [[ ! -f .venv/.installed || pyproject.toml -nt .venv/.installed ]]; then
    say "installing videodrop into .venv (pip install -e '.[dev]')"
    .venv/bin/python -m pip install -q -e '.[dev]'
    touch .venv/.installed
fi
