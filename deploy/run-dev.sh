#!/usr/bin/env bash
# `make run`: servers found or started, schema migrated, every role in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
VAR=${VAR:-./var}
mkdir -p "$VAR"
exports=$(.venv/bin/python -m deploy.devstack up --var "$VAR")
eval "$exports"
export VIDEODROP_INBOX=${VIDEODROP_INBOX:-$VAR/inbox}
export VIDEODROP_MEDIA_ROOT=${VIDEODROP_MEDIA_ROOT:-$VAR/media}
if [[ -z "${VIDEODROP_ADMIN_TOKEN:-}" ]]; then
  if [[ ! -s "$VAR/admin-token" ]]; then
    (umask 077; .venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(32))' > "$VAR/admin-token")
  fi
  VIDEODROP_ADMIN_TOKEN=$(cat "$VAR/admin-token")
  export VIDEODROP_ADMIN_TOKEN
fi
mkdir -p "$VIDEODROP_INBOX" "$VIDEODROP_MEDIA_ROOT"
.venv/bin/videodrop migrate
BIND=${VIDEODROP_BIND:-127.0.0.1:8000}
cat <<MSG

  videodrop is starting
    inbox        $(cd "$VIDEODROP_INBOX" && pwd)    (drop video files here)
    URL          ${VIDEODROP_BASE_URL:-http://localhost:8000}   (listening on $BIND)
    admin token  $VIDEODROP_ADMIN_TOKEN
                 (also in $VAR/admin-token; send as 'Authorization: Bearer <token>')
    try          cp ../shared/samples/bbb_chapters.mp4 $VIDEODROP_INBOX/
                 curl -s -H "Authorization: Bearer \$(cat $VAR/admin-token)" ${VIDEODROP_BASE_URL:-http://localhost:8000}/api/videos
  Ctrl-C stops everything.

MSG
exec .venv/bin/videodrop run --no-migrate
