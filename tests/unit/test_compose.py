"""deploy/compose.yaml: PostgreSQL, RabbitMQ, the migration as a one-shot and the roles,
each waiting for what it needs, with settings videodrop knows. ``docker compose config``
checks the file against Compose's own schema where Docker Compose is installed; the
structural checks here run everywhere (the official schema is not available offline)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import yaml

from videodrop.settings import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "deploy" / "compose.yaml"
ROLES = ("ingest", "prober", "derive", "api")
SERVERS = ("postgres", "rabbitmq")
TOKEN = "t" * 43
_VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?error}``."""

    def value(m: re.Match[str]) -> str:
        name, how, arg = m.group(1), m.group(2), m.group(3)
        if env.get(name):
            return env[name]
        if how == "?":
            raise ValueError(f"{name}: {arg}")
        return arg if how == "-" else ""

    return _VARIABLE.sub(value, text)


def load(env: dict[str, str] | None = None) -> dict[str, Any]:
    text = interpolate(COMPOSE.read_text(), {"VIDEODROP_ADMIN_TOKEN": TOKEN} if env is None
                       else env)
    loaded = yaml.safe_load(text)  # merge keys (<<) and anchors resolved
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    return load()["services"]  # type: ignore[no-any-return]


def commands() -> set[str]:
    """The ``videodrop`` sub-commands: the entry points the roles plug in, and migrate."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {*project["entry-points"]["videodrop.commands"], "migrate"}


def test_the_servers_the_roles_and_the_migration(services: dict[str, Any]) -> None:
    assert set(services) == {*SERVERS, "migrate", *ROLES}
    assert all(services[name].get("image") for name in services)
    ours = [services[name] for name in ("migrate", *ROLES)]
    assert len({s["image"] for s in ours}) == 1  # one image, every role a command of it
    build = ours[0]["build"]
    assert all(s["build"] == build for s in ours)
    context = (COMPOSE.parent / build["context"]).resolve()
    assert context == REPO
    assert (context / build["dockerfile"]).is_file()
    assert [s["command"] for s in ours] == [["videodrop", name] for name in ("migrate", *ROLES)]
    assert {s["command"][1] for s in ours} <= commands()


def test_the_environment_names_settings_videodrop_has(services: dict[str, Any]) -> None:
    known = {f"VIDEODROP_{f.name.upper()}" for f in fields(Settings)}
    postgres = services["postgres"]["environment"]
    rabbitmq = services["rabbitmq"]["environment"]
    for name in ("migrate", *ROLES):
        env = {k: str(v) for k, v in services[name]["environment"].items()}
        assert set(env) <= known, f"{name}: {set(env) - known} are not settings"
        settings = Settings.from_env(env)
        database, broker = urlsplit(settings.database_url), urlsplit(settings.amqp_url)
        assert (database.hostname, database.username, database.password,
                database.path.lstrip("/")) == ("postgres", postgres["POSTGRES_USER"],
                                               postgres["POSTGRES_PASSWORD"],
                                               postgres["POSTGRES_DB"])
        assert (broker.hostname, broker.username, broker.password, unquote(broker.path[1:])) \
            == ("rabbitmq", rabbitmq["RABBITMQ_DEFAULT_USER"],
                rabbitmq["RABBITMQ_DEFAULT_PASS"], "/")
        assert settings.admin_token == TOKEN


def test_the_admin_token_must_be_given() -> None:
    with pytest.raises(ValueError, match="VIDEODROP_ADMIN_TOKEN"):
        load(env={})


def test_each_service_waits_for_what_it_needs(services: dict[str, Any]) -> None:
    for name in SERVERS:
        assert services[name]["healthcheck"]["test"][0] == "CMD"
    assert services["migrate"]["restart"] == "no"  # a one-shot
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ROLES:
        assert services[name]["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "rabbitmq": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"}}, name
        assert services[name]["restart"] == "unless-stopped"
    for name, service in services.items():
        for needed, how in service.get("depends_on", {}).items():
            if how["condition"] == "service_healthy":
                assert "healthcheck" in services[needed], f"{name} waits on {needed}'s health"


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> named volume."""
    found = {}
    for spec in service.get("volumes", []):
        volume, _, path = spec.partition(":")
        found[path.split(":")[0]] = volume
    return found


def test_the_roles_share_the_inbox_and_the_media_store(services: dict[str, Any]) -> None:
    declared = set(load()["volumes"])
    used = {v for s in services.values() for v in mounts(s).values()}
    assert used == declared
    env = Settings.from_env({k: str(v) for k, v in services["prober"]["environment"].items()})
    inbox, media = str(env.inbox), str(env.media_root)
    assert mounts(services["ingest"]) == {inbox: "inbox"}
    assert mounts(services["prober"]) == {inbox: "inbox", media: "media"}
    assert mounts(services["api"])[media] == "media"
    assert mounts(services["postgres"]) == {"/var/lib/postgresql/data": "pgdata"}
    assert mounts(services["rabbitmq"]) == {"/var/lib/rabbitmq": "rabbitmq"}


def test_the_api_listens_where_it_is_published(services: dict[str, Any]) -> None:
    api = services["api"]
    bind = Settings.from_env({k: str(v) for k, v in api["environment"].items()}).bind
    host, _, port = bind.rpartition(":")
    assert host == "0.0.0.0"
    assert [p.rpartition(":")[2] for p in api["ports"]] == [port]
    assert f":{port}/healthz" in " ".join(api["healthcheck"]["test"])


def docker_compose() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return None
    found = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
    return docker if found.returncode == 0 else None


@pytest.mark.skipif(docker_compose() is None, reason="Docker Compose is not installed here")
def test_docker_compose_accepts_it() -> None:
    docker = docker_compose()
    assert docker is not None
    result = subprocess.run([docker, "compose", "-f", str(COMPOSE), "config", "--quiet"],
                            capture_output=True, text=True, check=False,
                            env={**os.environ, "VIDEODROP_ADMIN_TOKEN": TOKEN})
    assert result.returncode == 0, result.stderr
