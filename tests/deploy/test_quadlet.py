"""deploy/quadlet/: unit files Podman's quadlet generator accepts, in LME's style.

No quadlet generator runs here (Debian's podman 4.3 predates it), so the files are parsed as systemd INI
and checked against the keys the generator supports and requires. Key lists: containers/podman
``pkg/systemd/quadlet/quadlet.go`` (``groupsInfo``, Podman 5.x); every key we use exists since Podman 4.4
except where noted.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

QUADLET = Path(__file__).resolve().parents[2] / "deploy" / "quadlet"

CONTAINER_KEYS = {
    "AddCapability", "AddDevice", "AddHost", "Annotation", "AutoUpdate", "CgroupsMode", "ContainerName",
    "ContainersConfModule", "DNS", "DNSOption", "DNSSearch", "DropCapability", "Environment", "EnvironmentFile",
    "EnvironmentHost", "Entrypoint", "Exec", "ExposeHostPort", "GIDMap", "GlobalArgs", "Group", "GroupAdd",
    "HealthCmd", "HealthInterval", "HealthOnFailure", "HealthLogDestination", "HealthMaxLogCount",
    "HealthMaxLogSize", "HealthRetries", "HealthStartPeriod", "HealthStartupCmd", "HealthStartupInterval",
    "HealthStartupRetries", "HealthStartupSuccess", "HealthStartupTimeout", "HealthTimeout", "HostName", "IP6",
    "IP", "Image", "Label", "LogDriver", "LogOpt", "Mask", "Memory", "Mount", "Network", "NetworkAlias",
    "NoNewPrivileges", "Notify", "PidsLimit", "Pod", "PodmanArgs", "PublishPort", "Pull", "ReadOnly",
    "ReadOnlyTmpfs", "ReloadCmd", "ReloadSignal", "Retry", "RetryDelay", "Rootfs", "RunInit", "SeccompProfile",
    "Secret", "SecurityLabelDisable", "SecurityLabelFileType", "SecurityLabelLevel", "SecurityLabelNested",
    "SecurityLabelType", "ServiceName", "ShmSize", "StopSignal", "StartWithPod", "StopTimeout", "SubGIDMap",
    "SubUIDMap", "Sysctl", "Timezone", "Tmpfs", "UIDMap", "Ulimit", "Unmask", "User", "UserNS", "Volume",
    "WorkingDir",
}
VOLUME_KEYS = {"ContainersConfModule", "Copy", "Device", "Driver", "GlobalArgs", "Group", "Image", "Label",
               "Options", "PodmanArgs", "ServiceName", "Type", "User", "VolumeName"}
NETWORK_KEYS = {"Label", "DNS", "ContainersConfModule", "GlobalArgs", "DisableDNS", "Driver", "Gateway",
                "IPAMDriver", "IPRange", "IPv6", "InterfaceName", "Internal", "NetworkName", "NetworkDeleteOnStop",
                "Options", "ServiceName", "Subnet", "PodmanArgs"}
TYPE_SECTION = {".container": ("Container", CONTAINER_KEYS), ".volume": ("Volume", VOLUME_KEYS),
                ".network": ("Network", NETWORK_KEYS)}
APP_UNITS = {"lme-enrich-poll.container": "poll", "lme-enrich-assess.container": "assess",
             "lme-enrich-beat.container": "beat"}

Unit = dict[str, list[tuple[str, str]]]


def parse_unit(path: Path) -> Unit:
    """Systemd unit syntax: [Section] headers, Key=Value lines (keys repeat), # and ; comments."""
    sections: Unit = {}
    current: str | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        header = re.fullmatch(r"\[([A-Za-z-]+)\]", line)
        if header:
            current = header.group(1)
            assert current not in sections, f"{path.name}:{number}: section [{current}] twice"
            sections[current] = []
            continue
        assert current is not None, f"{path.name}:{number}: key outside a section"
        assert raw.rstrip().endswith("\\") is False, f"{path.name}:{number}: no line continuations, please"
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", key.strip()), f"{path.name}:{number}: not Key=Value"
        sections[current].append((key.strip(), value.strip()))
    return sections


def values(unit: Unit, section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def all_units() -> list[Path]:
    return sorted(p for p in QUADLET.iterdir() if p.suffix in TYPE_SECTION)


def test_the_expected_units_exist() -> None:
    names = {p.name for p in all_units()}
    assert names == {"lme-enrich.network", "lme-enrich-redis.volume", "lme-enrich-beat.volume",
                     "lme-enrich-redis.container", *APP_UNITS}


@pytest.mark.parametrize("path", all_units(), ids=lambda p: p.name)
def test_unit_has_its_quadlet_section_known_keys_and_lme_install(path: Path) -> None:
    unit = parse_unit(path)
    section, known = TYPE_SECTION[path.suffix]
    assert section in unit, f"quadlet needs a [{section}] section in {path.name}"
    unknown = {k for k, _ in unit[section]} - known
    assert not unknown, f"keys quadlet would reject in {path.name}: {unknown}"
    if path.suffix == ".container":
        assert len(values(unit, section, "Image")) == 1, "a .container needs exactly one Image="
    assert values(unit, "Unit", "PartOf") == ["lme.service"]
    assert values(unit, "Install", "WantedBy") == ["default.target lme.service"]


@pytest.mark.parametrize(("name", "role"), sorted(APP_UNITS.items()))
def test_app_unit_follows_lme_conventions(name: str, role: str) -> None:
    unit = parse_unit(QUADLET / name)
    container = dict(unit["Container"])  # last value per key; multi-valued keys read with values()
    assert values(unit, "Container", "Network") == ["lme", "lme-enrich.network"]
    assert f"--network-alias lme-enrich-{role}" in values(unit, "Container", "PodmanArgs")
    assert not values(unit, "Container", "PublishPort"), "lme-enrich serves nothing: no published ports"
    assert "lme_certs:/run/secrets/lme_certs:ro" in values(unit, "Container", "Volume")
    # Elasticsearch and LiteLLM are wanted, never required: LME's LLM stack is optional.
    wants = " ".join(values(unit, "Unit", "Wants"))
    after = " ".join(values(unit, "Unit", "After"))
    requires = " ".join(values(unit, "Unit", "Requires"))
    for service in ("lme-elasticsearch.service", "lme-litellm.service"):
        assert service in wants and service in after and service not in requires
    assert "lme-network.service" in requires
    assert container["HealthCmd"] == f"lme-enrich health {role}"
    assert container["Exec"].split()[0] in ("worker", "beat")
    assert role in container["Exec"]
    assert container["ReadOnly"] == "true" and container["NoNewPrivileges"] == "true"


@pytest.mark.parametrize("name", sorted(APP_UNITS))
def test_secrets_are_mounted_where_the_file_variables_point(name: str) -> None:
    unit = parse_unit(QUADLET / name)
    targets = {}
    for secret in values(unit, "Container", "Secret"):
        source, *options = secret.split(",")
        opts = dict(option.split("=", 1) for option in options)
        assert opts["type"] == "mount" and opts["uid"] == "10001" and opts["mode"] == "0400"
        targets[source] = opts["target"]
    assert set(targets) == {"lme-enrich-es-api-key", "lme-enrich-llm-api-key"}
    env = dict(item.split("=", 1) for line in values(unit, "Container", "Environment") for item in line.split())
    assert env["LME_ENRICH_ES_API_KEY_FILE"] == targets["lme-enrich-es-api-key"]
    assert env["LME_ENRICH_LLM_API_KEY_FILE"] == targets["lme-enrich-llm-api-key"]
    assert env["LME_ENRICH_ES_CA_CERT"] == "/run/secrets/lme_certs/ca/ca.crt"
    assert env["LME_ENRICH_REDIS_URL"] == "redis://lme-enrich-redis:6379/0"
    assert not any(key.endswith(("_PASSWORD", "_API_KEY")) for key in env), "no secret values in unit files"


def test_redis_is_persistent_private_and_checked() -> None:
    unit = parse_unit(QUADLET / "lme-enrich-redis.container")
    container = dict(unit["Container"])
    assert "--appendonly yes" in container["Exec"]
    assert values(unit, "Container", "Network") == ["lme-enrich.network"], "Redis stays off LME's network"
    assert "lme-enrich-redis.volume:/data" in values(unit, "Container", "Volume")
    assert container["HealthCmd"] == "redis-cli ping"
    assert not values(unit, "Container", "PublishPort")
    volume = parse_unit(QUADLET / "lme-enrich-redis.volume")
    assert values(volume, "Volume", "VolumeName") == ["lme-enrich-redis"]
    network = parse_unit(QUADLET / "lme-enrich.network")
    assert values(network, "Network", "NetworkName") == ["lme-enrich"]


def test_parser_rejects_a_broken_unit(tmp_path: Path) -> None:
    broken = tmp_path / "x.container"
    broken.write_text("Image=foo\n[Container]\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="outside a section"):
        parse_unit(broken)
