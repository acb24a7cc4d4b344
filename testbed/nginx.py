"""nginx with this project's site file (deploy/nginx.conf) in front of a running system."""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import requests

from testbed.processes import free_port
from testbed.system import REPO, System
from testbed.waits import wait_for

SITE = REPO / "deploy" / "nginx.conf"
MAIN = """
user {user};  # the test's folders are private to the user running it
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    default_type application/octet-stream;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    include {root}/site.conf;
}}
"""


def site_for(system: System, port: int, root: Path) -> str:
    """deploy/nginx.conf with this test's addresses and folders (nothing else changed)."""
    text = SITE.read_text()
    text = re.sub(r"server 127\.0\.0\.1:8000;", f"server 127.0.0.1:{system.port};", text)
    text = re.sub(r"listen 80;", f"listen 127.0.0.1:{port};", text)
    text = re.sub(r"\n\s*listen \[::\]:80;", "", text)
    text = re.sub(r"access_log /\S+", f"access_log {root}/access.log", text)
    links = system.env.get("VIDEODROP_STREAM_LINKS") or str(system.root / "no-stream-links")
    text = text.replace("root /srv/videodrop/stream-links;", f"root {links};")
    return text.replace("alias /srv/videodrop/media/;", f"alias {system.media_root}/;")


@contextlib.contextmanager
def nginx_in_front(system: System, root: Path, *, log_format: str | None = None
                   ) -> Iterator[str]:
    """nginx with deploy/nginx.conf in front of ``system``'s API: its base URL. With
    ``log_format``, the access log (``root/access.log``) uses it. RuntimeError when nginx
    is not installed; stopped (SIGTERM to its process group) on leaving."""
    if shutil.which("nginx") is None:
        raise RuntimeError("nginx is not installed: apt-get install nginx-light"
                           " (make test does)")
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    site = site_for(system, port, root)
    main = MAIN.format(root=root, user=pwd.getpwuid(os.getuid()).pw_name)
    if log_format is not None:
        main = main.replace("http {", f"http {{\n    log_format test_format '{log_format}';", 1)
        site = re.sub(rf"access_log {re.escape(str(root))}/access\.log \w+",
                      f"access_log {root}/access.log test_format", site)
    (root / "site.conf").write_text(site)
    (root / "nginx.conf").write_text(main)
    proc = subprocess.Popen(["nginx", "-p", str(root), "-e", str(root / "error.log"),
                             "-c", str(root / "nginx.conf")], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(f"{url}/healthz", timeout=2).ok, timeout=20,
                 what="nginx in front of the API")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
