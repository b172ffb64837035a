"""deploy/install-lme.sh and the other shell scripts: syntax, and --dry-run plans for install and uninstall."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "install-lme.sh"
SCRIPTS = sorted((ROOT / "deploy").rglob("*.sh"))
# Every shell script we ship or run, for shellcheck (scripts/ensure-ci-tools is deliberately not `set -e`).
ALL_SHELL = [*SCRIPTS, *sorted((ROOT / "scripts").iterdir()), ROOT / ".ci" / "run"]
OUR_UNITS = {p.name for p in (ROOT / "deploy" / "quadlet").iterdir() if p.suffix in (".container", ".volume",
                                                                                     ".network")}


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=30, check=False,
                          env=env)


def plan(*args: str) -> list[str]:
    result = run("--dry-run", *args)
    assert result.returncode == 0, result.stderr
    return [line.removeprefix("[dry-run] ") for line in result.stdout.splitlines() if line.startswith("[dry-run] ")]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shell_scripts_parse_and_are_strict(script: Path) -> None:
    subprocess.run(["bash", "-n", str(script)], check=True, timeout=30)
    assert "set -euo pipefail" in script.read_text(encoding="utf-8")


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_shellcheck_is_clean() -> None:
    result = subprocess.run(["shellcheck", *map(str, ALL_SHELL)], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stdout


def test_install_plan_runs_the_steps_in_order() -> None:
    steps = plan()
    text = "\n".join(steps)

    def position(fragment: str) -> int:
        found = [i for i, step in enumerate(steps) if fragment in step]
        assert found, f"no step with {fragment!r} in:\n{text}"
        return found[0]

    order = [position("podman build --format docker"), position("install -m 0644"),
             position("secret create --driver file lme-enrich-llm-api-key"),
             position("setup-credentials | podman secret create --driver file lme-enrich-es-api-key"),
             position("systemctl daemon-reload"), position("systemctl restart")]
    assert order == sorted(order)
    copied = {step.split()[-1].rsplit("/", 1)[-1] for step in steps if step.startswith("install -m 0644")}
    assert copied == OUR_UNITS
    assert all(step.split()[-1].startswith("/etc/containers/systemd/")
               for step in steps if step.startswith("install -m 0644"))
    # The key is made by lme-enrich logged in as LME's elastic secret, on LME's network, verifying LME's CA.
    setup = steps[position("setup-credentials")]
    assert "--secret elastic,type=env,target=LME_ENRICH_ES_PASSWORD" in setup and "--network lme" in setup
    restart = steps[position("systemctl restart")]
    assert {"lme-enrich-poll.service", "lme-enrich-assess.service", "lme-enrich-beat.service",
            "lme-enrich-redis.service"} <= set(restart.split())


def test_install_options_change_the_plan(tmp_path: Path) -> None:
    archive = tmp_path / "lme-enrich.tar"
    steps = plan("--image-archive", str(archive), "--elastic-superuser", "--no-start")
    text = "\n".join(steps)
    assert f"podman load --input {archive}" in text and "podman build" not in text
    assert "setup-credentials" not in text and "LME's elastic secret" in text
    assert "systemctl restart" not in text


def test_uninstall_touches_only_what_install_added() -> None:
    steps = plan("--uninstall", "--purge")
    removed = [step.split()[-1] for step in steps if step.startswith("rm -f /etc/containers/systemd/")]
    assert {path.rsplit("/", 1)[-1] for path in removed} == OUR_UNITS
    for step in steps:
        words = step.split()
        assert "lme_certs" not in words and "lme.service" not in words, step
        if words[:3] == ["podman", "secret", "rm"]:
            assert words[3].startswith("lme-enrich-"), step
        if words[:2] in (["podman", "network"], ["podman", "volume"]):
            assert words[-1].startswith("lme-enrich"), step
        if words[:2] == ["systemctl", "stop"]:
            assert all(unit.startswith("lme-enrich-") for unit in words[2:]), step
    assert any(step.startswith("podman volume rm --force lme-enrich-redis") for step in steps)


def test_uninstall_without_purge_keeps_data() -> None:
    text = "\n".join(plan("--uninstall"))
    assert "volume rm" not in text and "rmi" not in text


def test_bad_options_are_refused() -> None:
    assert run("--purge").returncode != 0
    bogus = run("--no-such-option")
    assert bogus.returncode != 0 and "unknown option" in bogus.stderr


def test_install_without_root_is_refused_before_any_change() -> None:
    command = ["bash", str(SCRIPT)]
    if subprocess.run(["id", "-u"], capture_output=True, text=True, check=True).stdout.strip() == "0":
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv to drop to an unprivileged user")
        command = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode != 0 and "run as root" in result.stderr
    assert not result.stdout.strip(), "nothing may happen before the refusal"


def test_make_secrets_creates_every_compose_secret_once(tmp_path: Path) -> None:
    target = tmp_path / "secrets"
    script = ROOT / "deploy" / "demo" / "make-secrets.sh"
    subprocess.run(["bash", str(script), str(target)], check=True, capture_output=True, timeout=30)
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    for spec in compose["secrets"].values():
        name = spec["file"].rsplit("/", 1)[-1].rstrip("}")
        path = target / name
        assert path.stat().st_size > 16, name
        assert path.stat().st_mode & 0o777 == 0o644, name
    assert target.stat().st_mode & 0o777 == 0o700
    before = {p.name: p.read_text() for p in target.iterdir()}
    subprocess.run(["bash", str(script), str(target)], check=True, capture_output=True, timeout=30)
    assert {p.name: p.read_text() for p in target.iterdir()} == before, "a second run must keep existing secrets"
    assert (target / "es_credential").read_text() == (target / "elastic_password").read_text()
