"""README's install recipe, as written, on a PostgreSQL set up the way Debian 12 sets it up.

Debian's `pg_createcluster` runs `initdb --auth-local=peer --auth-host=scram-sha-256`: a
role without a password gets in through the Unix socket when the OS user has the role's
name (peer), never over TCP. The cluster here is made the same way, as the `postgres` OS
account, with two differences a test needs: its socket lives in a private folder (not
/var/run/postgresql) and it listens on a free port (5432 belongs to the machine's server).

Then, as an operator would: README's role and database commands as `postgres`,
`deploy/install.sh` (staged into a DESTDIR), and `videodrop migrate` and `videodrop health`
through README's `vd` form (`sh -c 'set -a; . ENVFILE; exec videodrop "$@"'`) as the service
user. The real service user is `videodrop`; this test uses the existing unprivileged
`nobody` account instead (peer authentication maps it to a role `nobody`), so the machine
gains no account. The installed env file is used as written, except for what points at this
machine's test servers: its socket folder (the throwaway's), the data folders (under the
DESTDIR) and the broker (the session's RabbitMQ and queue prefix). The port, not part of the
recipe, reaches libpq as PGPORT.

Everything lives in a temporary folder made 0755 under /tmp, wherever the checkout is, so
that `postgres` and `nobody` can reach what they need (a checkout under /root cannot be read
by either; install.sh itself runs as root, as with sudo).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness import REPO
from tests.servers import devstack

SERVICE_USER = "nobody"  # stands in for `videodrop` (see the module docstring)
DATABASE = "videodrop"  # README: createdb -O videodrop videodrop
DEBIAN_SOCKETS = "/var/run/postgresql"  # Debian's unix_socket_directories
OLD_URL = "postgresql://{user}@localhost/videodrop"  # the env example before issue 17
EX_UNAVAILABLE = 69
# sudo's secure_path on Debian: install.sh finds the system's python3 as `sudo` would (a
# python3 of the test's PATH may live under /root, where the service user cannot run it).
SUDO_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="acting as the postgres and the service accounts needs root")


@dataclass(frozen=True)
class Cluster:
    bindir: Path
    data: Path
    sockets: Path
    port: int
    log: Path


def as_user(name: str) -> dict[str, object]:
    entry = pwd.getpwnam(name)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def clean_env(**extra: str) -> dict[str, str]:
    """What `sudo -u` leaves: no PG* or VIDEODROP_* variables from the test's environment."""
    return {"PATH": SUDO_PATH, "LANG": "C.UTF-8", **extra}


@pytest.fixture(scope="module")
def workspace() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="vdinstall-"))
    base.chmod(0o755)  # mkdtemp makes 0700: neither postgres nor nobody could enter
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(workspace: Path) -> Iterator[Cluster]:
    """A started PostgreSQL cluster with Debian's authentication defaults."""
    bindir = devstack.find_postgres_bindir()
    if bindir is None:
        pytest.fail(f"no PostgreSQL server binaries (initdb, pg_ctl): {devstack.PG_INSTALL}",
                    pytrace=False)
    postgres = pwd.getpwnam("postgres")
    home = workspace / "pg"
    home.mkdir()
    os.chown(home, postgres.pw_uid, postgres.pw_gid)
    home.chmod(0o755)
    sockets = home / "run"  # as /var/run/postgresql: postgres's, others may connect
    sockets.mkdir()
    os.chown(sockets, postgres.pw_uid, postgres.pw_gid)
    sockets.chmod(0o2775)
    c = Cluster(bindir, home / "data", sockets, devstack.free_port(), home / "postgres.log")
    done = subprocess.run(
        [str(bindir / "initdb"), "-D", str(c.data), "-U", "postgres", "-E", "UTF8",
         "--locale=C", "-N", "--auth-local=peer", "--auth-host=scram-sha-256"],
        capture_output=True, text=True, timeout=120, cwd=home, env=clean_env(),
        **as_user("postgres"))  # type: ignore[call-overload]
    assert done.returncode == 0, done.stdout + done.stderr
    with (c.data / "postgresql.conf").open("a") as conf:
        conf.write(f"\nport = {c.port}\nlisten_addresses = 'localhost'\n"
                   f"unix_socket_directories = '{sockets}'\n"
                   "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
    pg_ctl = [str(bindir / "pg_ctl"), "-D", str(c.data)]
    done = subprocess.run([*pg_ctl, "start", "-w", "-t", "60", "-l", str(c.log)],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, timeout=90, cwd=home, env=clean_env(),
                          start_new_session=True, **as_user("postgres"))  # type: ignore[call-overload]
    assert done.returncode == 0, f"PostgreSQL did not start: {c.log.read_text()[-2000:]}"
    try:
        yield c
    finally:
        subprocess.run([*pg_ctl, "stop", "-m", "immediate", "-w"], capture_output=True,
                       timeout=60, cwd=home, env=clean_env(), **as_user("postgres"))  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def role_and_database(cluster: Cluster) -> None:
    """README: `sudo -u postgres createuser videodrop && sudo -u postgres createdb -O
    videodrop videodrop`, for our service user, on the throwaway's socket."""
    env = clean_env(PGHOST=str(cluster.sockets), PGPORT=str(cluster.port))
    for argv in (["createuser", SERVICE_USER], ["createdb", "-O", SERVICE_USER, DATABASE]):
        done = subprocess.run([str(cluster.bindir / argv[0]), *argv[1:]], capture_output=True,
                              text=True, timeout=60, cwd=cluster.sockets, env=env,
                              **as_user("postgres"))  # type: ignore[call-overload]
        assert done.returncode == 0, f"{argv}: {done.stderr}"


@pytest.fixture(scope="module")
def installed(workspace: Path) -> Path:
    """deploy/install.sh staged under DESTDIR (dependencies from the machine's pip index)."""
    dest = workspace / "root"
    done = subprocess.run(["bash", "-c", 'umask 022 && exec bash "$0"',
                           str(REPO / "deploy" / "install.sh")],
                          env={**os.environ, "PATH": SUDO_PATH, "DESTDIR": str(dest)},
                          capture_output=True,
                          text=True, timeout=300, cwd=workspace)
    assert done.returncode == 0, done.stderr
    # What install.sh does for the service account when not staged: chown the data folders
    # to it and the env file to root:<its group>.
    user = pwd.getpwnam(SERVICE_USER)
    for folder in ("inbox", "media", "stream-links"):
        os.chown(dest / "srv/videodrop" / folder, user.pw_uid, user.pw_gid)
    os.chown(dest / "etc/videodrop/videodrop.env", 0, user.pw_gid)
    return dest


def point_at_this_machine(envfile: Path, *, dest: Path, sockets: Path, amqp_url: str,
                          amqp_prefix: str) -> str:
    """Redirect the installed env file to the test's servers and folders; return its
    database URL as it was installed."""
    text = envfile.read_text()
    installed_url = re.search(r"^VIDEODROP_DATABASE_URL=(.*)$", text, re.M)
    assert installed_url, text
    text = text.replace(f"host={DEBIAN_SOCKETS}", f"host={sockets}")
    text = text.replace("/srv/videodrop", f"{dest}/srv/videodrop")
    text = re.sub(r"^VIDEODROP_AMQP_URL=.*$", lambda _: f"VIDEODROP_AMQP_URL={amqp_url}", text,
                  flags=re.M)
    envfile.write_text(text + f"VIDEODROP_AMQP_PREFIX={amqp_prefix}\n")
    return installed_url.group(1)


def vd(dest: Path, cluster: Cluster, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """README's `vd`: the videodrop command as the service user with the service's settings
    (the env file sourced by sh), here on the throwaway's port."""
    script = ('set -a; . "$VD_ENVFILE"; exec "$VD_VENV/bin/videodrop" "$@"')
    return subprocess.run(
        ["sh", "-c", script, "vd", *args], capture_output=True, text=True, timeout=120,
        cwd="/", env=clean_env(**{"PGPORT": str(cluster.port),
                                  "VD_ENVFILE": str(dest / "etc/videodrop/videodrop.env"),
                                  "VD_VENV": str(dest / "opt/videodrop/venv"), **env}),
        **as_user(SERVICE_USER))  # type: ignore[call-overload]


def migrations_on_disk() -> list[int]:
    """The migrations' numbers on disk (a number may be skipped: 0014 was never used)."""
    return sorted(int(p.name[:4])
                  for p in (REPO / "videodrop" / "migrations").glob("[0-9][0-9][0-9][0-9]_*.sql"))


def as_superuser(cluster: Cluster, statement: str, database: str = DATABASE) -> str:
    """What psql prints for ``statement``, run by the cluster's superuser (`sudo -u
    postgres psql -d DATABASE -c ...`)."""
    done = subprocess.run(
        [str(cluster.bindir / "psql"), "-XAtq", "-v", "ON_ERROR_STOP=1", "-d", database,
         "-c", statement],
        capture_output=True, text=True, timeout=60, cwd=cluster.sockets,
        env=clean_env(PGHOST=str(cluster.sockets), PGPORT=str(cluster.port)),
        **as_user("postgres"))  # type: ignore[call-overload]
    assert done.returncode == 0, done.stderr
    return done.stdout


def tables_of(cluster: Cluster, owner: str) -> set[str]:
    """The tables `owner` owns in the database, as the cluster's superuser sees them."""
    return set(as_superuser(
        cluster, f"SELECT tablename FROM pg_tables WHERE tableowner = '{owner}'").split())


def test_a_role_without_password_is_refused_over_tcp(cluster: Cluster, installed: Path,
                                                    role_and_database: None) -> None:
    """The cluster really has Debian's defaults: the env example's old TCP URL fails the way
    issue 17 reports (so the test below would catch a return to it)."""
    url = OLD_URL.format(user=SERVICE_USER)
    done = vd(installed, cluster, "migrate", VIDEODROP_DATABASE_URL=url,
              VD_ENVFILE="/dev/null")
    assert done.returncode == EX_UNAVAILABLE, done.stderr
    assert "fe_sendauth: no password supplied" in done.stderr


def test_the_socket_lets_in_only_the_role_named_for_the_os_user(
        cluster: Cluster, installed: Path, role_and_database: None) -> None:
    """Peer, not trust: through the same socket, the service user may not be `postgres`."""
    url = f"postgresql://postgres@/{DATABASE}?host={cluster.sockets}"
    done = vd(installed, cluster, "migrate", VIDEODROP_DATABASE_URL=url,
              VD_ENVFILE="/dev/null")
    assert done.returncode == EX_UNAVAILABLE, done.stderr
    assert 'Peer authentication failed for user "postgres"' in done.stderr


def test_the_documented_install_migrates_and_is_healthy(cluster: Cluster, installed: Path,
                                                        role_and_database: None,
                                                        amqp_url: str, amqp_prefix: str
                                                        ) -> None:
    envfile = installed / "etc/videodrop/videodrop.env"
    url = point_at_this_machine(envfile, dest=installed, sockets=cluster.sockets,
                                amqp_url=amqp_url, amqp_prefix=amqp_prefix)
    print(f"installed VIDEODROP_DATABASE_URL={url}")

    first = vd(installed, cluster, "migrate")
    assert first.returncode == 0, first.stderr
    again = vd(installed, cluster, "migrate")  # README: idempotent
    assert again.returncode == 0, again.stderr
    # The schema belongs to the service user's role: it, not a superuser, ran the migrations.
    assert {"schema_migrations", "videos"} <= tables_of(cluster, SERVICE_USER)

    health = vd(installed, cluster, "health")
    print(health.stdout)
    assert health.returncode == 0, health.stdout + health.stderr
    rows = {line.split()[0]: line for line in health.stdout.splitlines()[1:]}
    assert set(rows) >= {"database", "broker", "inbox", "media", "ffprobe"}, health.stdout
    assert f"schema up to date ({len(migrations_on_disk())} migrations)" in rows["database"]


def test_the_search_extension_needs_the_database_owner_or_a_superuser(
        cluster: Cluster, installed: Path, role_and_database: None) -> None:
    """Migration 0011 creates pg_trgm, a trusted extension: the owner of the database may
    (the test above), a role that only may create tables in it may not. That role is told
    which migration failed and why (exit 78, nothing of it applied); once a superuser has
    created the extension, as docs/operations.md says, the migration goes through."""
    other = "notowned"
    as_superuser(cluster, f"CREATE DATABASE {other}", "postgres")
    as_superuser(cluster, f"GRANT USAGE, CREATE ON SCHEMA public TO {SERVICE_USER}", other)
    url = f"postgresql://{SERVICE_USER}@/{other}?host={cluster.sockets}"
    trigrams = next((REPO / "videodrop" / "migrations").glob("*_search_trigrams.sql"))
    refused = vd(installed, cluster, "migrate", VIDEODROP_DATABASE_URL=url,
                 VD_ENVFILE="/dev/null")
    assert refused.returncode == 78, refused.stderr
    assert (f'migration {trigrams.stem} failed: permission denied to create extension'
            ' "pg_trgm"') in refused.stderr, refused.stderr
    before = int(trigrams.name.split("_", 1)[0]) - 1  # every migration before it applied
    assert as_superuser(cluster, "SELECT max(version) FROM schema_migrations",
                        other).strip() == str(before)
    as_superuser(cluster, "CREATE EXTENSION pg_trgm", other)  # docs/operations.md
    again = vd(installed, cluster, "migrate", VIDEODROP_DATABASE_URL=url,
               VD_ENVFILE="/dev/null")
    assert again.returncode == 0, again.stderr
    assert as_superuser(cluster, "SELECT max(version) FROM schema_migrations",
                        other).strip() == str(migrations_on_disk()[-1])
