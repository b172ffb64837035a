"""Print deploy/requirements.lock: the pinned runtime closure of lme-enrich as installed in this venv.

    .venv/bin/python deploy/make_lock.py > deploy/requirements.lock

Only [project.dependencies] and what they need; no test extras. A dependency whose marker holds for an
older Python 3.11 than this one (Debian's 3.11.2, say) is pinned too, with its marker, from ``NOT_INSTALLED``.
"""

from __future__ import annotations

import importlib.metadata as md
from typing import Final

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

HEADER = """\
# Runtime dependencies of lme-enrich, pinned (the project's [project.dependencies] and everything they pull in;
# no test tools). The image installs exactly these: Containerfile -> pip wheel -r deploy/requirements.lock.
# Regenerate from a venv that passed the test suite: .venv/bin/python deploy/make_lock.py > deploy/requirements.lock
"""
# Python versions the image may run: the base image's patch level is not ours to choose.
OLDEST: Final = {"python_version": "3.11", "python_full_version": "3.11.0"}
# Versions for marker-only dependencies this venv (a newer 3.11) does not install.
NOT_INSTALLED: Final = {"async-timeout": "5.0.1"}


def closure(project: str = "lme-enrich") -> dict[str, str]:
    """Canonical name -> pin line (``==version``, plus ``; marker`` where only older 3.11s need it)."""
    seen: set[tuple[str, frozenset[str]]] = set()
    pins: dict[str, str] = {}

    def walk(requirement: Requirement) -> None:
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in seen:
            return
        seen.add(key)
        dist = md.distribution(requirement.name)
        pins[key[0]] = f"=={dist.version}"
        for text in dist.requires or []:
            dep = Requirement(text)
            extras = sorted(requirement.extras) or [""]
            if dep.marker is None or any(dep.marker.evaluate({"extra": e}) for e in extras):
                walk(dep)
            elif any(dep.marker.evaluate({"extra": e, **OLDEST}) for e in extras):
                name = canonicalize_name(dep.name)
                pins.setdefault(name, f"=={NOT_INSTALLED[name]} ; {dep.marker}")

    for text in md.distribution(project).requires or []:
        dep = Requirement(text)
        if dep.marker is None or dep.marker.evaluate({"extra": ""}):
            walk(dep)
    return pins


def main() -> None:
    print(HEADER, end="")
    for name, pin in sorted(closure().items()):
        print(f"{name}{pin}")


if __name__ == "__main__":
    main()
