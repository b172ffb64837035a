"""A real Elasticsearch 8.18 node on loopback: ``python -m tests.realstack.elasticsearch --port 0``.

The Maven project ``es-node/`` (Elasticsearch's server and transport-netty4 from Maven Central, plus a
small launcher of ours) is built once into a cache directory keyed by the hash of its sources, laid out
like a distribution (``lib/``, ``modules/<name>/``). Before every start the sha256 of each downloaded jar
is checked against ``es-node/artifacts.sha256``. The node then runs in its own JVM with its data in a
temporary directory; ``listening on http://HOST:PORT`` is printed once
``GET /_cluster/health?wait_for_status=yellow`` reports yellow or green. SIGTERM/SIGINT (or the death of
our parent) stops the JVM cleanly and deletes the data.

Modules Elastic does not publish to Maven Central are absent, and we do not replace them: rest-root
(``GET /`` answers 404/405, so ``client.info()`` fails and ``ping()`` is False), reindex (no
``_update_by_query``/``_delete_by_query``/``_reindex``), lang-painless (no scripts), mapper-extras
(``match_only_text``, ``scaled_float``, ...) and x-pack (security, ``wildcard``, ``constant_keyword``,
``version``, ILM, data streams' x-pack parts).

Regenerate the pins after changing a version in ``pom.xml``::

    python -m tests.realstack.elasticsearch --write-pins

Environment: ``JAVA_HOME`` (else ``java`` on PATH; 17 or newer), ``LME_ENRICH_CACHE`` (cache root,
default ``$XDG_CACHE_HOME`` or ``~/.cache``, then ``lme-enrich/es-node``), ``LME_ES_NODE_HEAP`` (default 512m).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

PROJECT = Path(__file__).resolve().parent / "es-node"
PINS = PROJECT / "artifacts.sha256"
#: Jars built from this repository's sources (not downloaded, so not pinned).
OWN_JARS = frozenset({"lib/lme-es-node.jar"})
MAIN_CLASS = "lme.esnode.Main"


class NodeError(RuntimeError):
    pass


def log(message: str) -> None:
    print(f"es-node: {message}", file=sys.stderr, flush=True)


# -- build and cache ------------------------------------------------------------------------------
def _sources() -> list[Path]:
    return [PROJECT / "pom.xml", *sorted(p for p in (PROJECT / "src").rglob("*") if p.is_file())]


def source_hash() -> str:
    """Hash of what the build reads (pom.xml and src/); the pins file is checked, not built, so it is left out."""
    digest = hashlib.sha256()
    for path in _sources():
        digest.update(path.relative_to(PROJECT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:20]


def cache_root() -> Path:
    base = os.environ.get("LME_ENRICH_CACHE") or os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lme-enrich" / "es-node"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_dist() -> Path:
    """The built distribution directory, building it with Maven first if this source hash has none yet."""
    root = cache_root()
    dist = root / source_hash() / "dist"
    if (dist / "lib").is_dir():
        os.utime(dist.parent)  # marks it as in use for _prune
        return dist
    with _locked(root / ".build.lock"):
        if (dist / "lib").is_dir():  # another process built it while we waited
            return dist
        mvn = shutil.which("mvn")
        if mvn is None:
            raise NodeError("Maven (mvn) is not on PATH: apt-get install -y maven")
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="build-", dir=root) as tmp:
            work = Path(tmp)
            shutil.copy2(PROJECT / "pom.xml", work / "pom.xml")
            shutil.copytree(PROJECT / "src", work / "src")
            log("building the node with Maven (first run only; downloads from Maven Central into ~/.m2)")
            # --strict-checksums: fail (not warn) when a download does not match the repository's checksum
            cmd = [mvn, "-B", "-q", "--strict-checksums", "-Dstyle.color=never", "package"]
            result = subprocess.run(cmd, cwd=work, stdout=sys.stderr, check=False)
            if result.returncode != 0:
                raise NodeError(f"mvn package failed with exit code {result.returncode}")
            dist.parent.mkdir(parents=True, exist_ok=True)
            (work / "target" / "dist").rename(dist)
        log(f"built {dist} in {time.monotonic() - started:.1f}s")
        _prune(root, keep=dist.parent)
    return dist


def _prune(root: Path, keep: Path, max_age_days: float = 14) -> None:
    """Delete builds of other sources unused for ``max_age_days`` (each is ~70 MB)."""
    cutoff = time.time() - max_age_days * 86400
    for old in root.iterdir():
        if old.is_dir() and old != keep and not old.name.startswith("build-") and old.stat().st_mtime < cutoff:
            shutil.rmtree(old, ignore_errors=True)


# -- checksum pins ----------------------------------------------------------------------------------
def jar_digests(dist: Path) -> dict[str, str]:
    """sha256 of every downloaded jar the node runs on, by path relative to ``dist``."""
    digests = {}
    for jar in sorted(dist.rglob("*.jar")):
        name = jar.relative_to(dist).as_posix()
        if name not in OWN_JARS:
            digests[name] = hashlib.sha256(jar.read_bytes()).hexdigest()
    return digests


def read_pins(path: Path = PINS) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split(maxsplit=1)
            pins[name.strip()] = digest
    return pins


def write_pins(dist: Path, path: Path = PINS) -> None:
    header = ("# sha256 of every downloaded jar of the es-node (path in the built dist/), checked before each start.\n"
              "# Regenerate after changing pom.xml: python -m tests.realstack.elasticsearch --write-pins\n")
    path.write_text(header + "".join(f"{d}  {n}\n" for n, d in jar_digests(dist).items()))


def verify_pins(dist: Path) -> None:
    if not PINS.exists():
        raise NodeError(f"{PINS} is missing: run python -m tests.realstack.elasticsearch --write-pins")
    pins, actual = read_pins(), jar_digests(dist)
    problems = [f"unpinned jar {n}" for n in sorted(actual.keys() - pins.keys())]
    problems += [f"pinned jar missing: {n}" for n in sorted(pins.keys() - actual.keys())]
    problems += [f"sha256 mismatch: {n}" for n in sorted(pins.keys() & actual.keys()) if pins[n] != actual[n]]
    if problems:
        raise NodeError("the node's jars do not match es-node/artifacts.sha256: " + "; ".join(problems))


# -- running -----------------------------------------------------------------------------------------
def java_command() -> str:
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if java is None or not Path(java).exists():
        raise NodeError("no java found (set JAVA_HOME or apt-get install -y openjdk-17-jdk-headless)")
    return java


def java_major(java: str) -> int:
    """The major version of ``java``, from its ``release`` file (no JVM start), else ``java -version``."""
    release = Path(java).resolve().parents[1] / "release"
    text = release.read_text() if release.exists() else subprocess.run(
        [java, "-version"], capture_output=True, text=True, check=False).stderr
    for marker in ('JAVA_VERSION="', 'version "'):
        if marker in text:
            version = text.split(marker, 1)[1].split('"', 1)[0]
            return int(version.removeprefix("1.").split(".", 1)[0].split("-", 1)[0])
    raise NodeError(f"cannot tell the version of {java}")


def jvm_options(work: Path, major: int) -> list[str]:
    heap = os.environ.get("LME_ES_NODE_HEAP", "512m")
    # as Elasticsearch 8's jvm.options: the COMPAT locale data is gone from Java 23 on
    locales = "-Djava.locale.providers=SPI,COMPAT" if major < 23 else "-Djava.locale.providers=CLDR"
    return [
        "-Xms256m", f"-Xmx{heap}", "-XX:+UseG1GC", "-Xss1m", "-XX:-HeapDumpOnOutOfMemoryError",
        "-Dfile.encoding=UTF-8", locales, *(["--enable-native-access=ALL-UNNAMED"] if major >= 22 else []),
        f"-Djava.io.tmpdir={work / 'tmp'}", "-Des.distribution.type=tar", "-Dlme.esnode.deleteWorkOnExit=true",
        "-Dlog4j.shutdownHookEnabled=false", "-Dlog4j2.disable.jmx=true", "-Dlog4j2.formatMsgNoLookups=true",
        "-Dio.netty.noKeySetOptimization=true", "-Dio.netty.recycler.maxCapacityPerThread=0",
    ]


def _get(url: str, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # loopback only
        return response.status, dict(response.headers), response.read()


def _wait_ready(proc: subprocess.Popen[bytes], work: Path, host: str, deadline: float, stop: threading.Event) -> str:
    ports = work / "logs" / "http.ports"
    url = ""
    while time.monotonic() < deadline:
        if stop.is_set():
            raise NodeError("stopped by a signal before the node was ready")
        if proc.poll() is not None:
            raise NodeError(f"the JVM exited with {proc.returncode} before the node was ready")
        if not url and ports.exists() and ports.read_text().strip():
            port = ports.read_text().split()[0].rsplit(":", 1)[1]
            url = f"http://{host}:{port}"
        if url:
            try:
                _, _, body = _get(url + "/_cluster/health?wait_for_status=yellow&timeout=10s", timeout=15)
                if json.loads(body).get("status") in ("yellow", "green"):
                    return url
            except (OSError, urllib.error.URLError, ValueError):
                pass
        stop.wait(0.2)
    raise NodeError("the node was not ready in time")


def _stop(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log("the JVM did not stop in time; killing it")
            proc.kill()
            proc.wait()
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()
    return proc.returncode


def serve(host: str, port: int, *, start_timeout: float, log_level: str) -> int:
    dist = ensure_dist()
    verify_pins(dist)
    java = java_command()
    major = java_major(java)
    if major < 17:
        raise NodeError(f"{java} is Java {major}; Elasticsearch 8.18 needs 17 or newer")
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    parent = os.getppid()
    work = Path(tempfile.mkdtemp(prefix="lme-es-node-"))
    (work / "tmp").mkdir()
    try:
        cmd = [java, *jvm_options(work, major), "-cp", str(dist / "lib" / "*"), MAIN_CLASS,
               str(dist), str(work), host, str(port), log_level]
        # stdin is a pipe the JVM watches: if we die without a word, it sees EOF and stops itself.
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=sys.stderr, start_new_session=True)
        try:
            url = _wait_ready(proc, work, host, time.monotonic() + start_timeout, stop)
            print(f"listening on {url}", flush=True)
            while not stop.is_set() and proc.poll() is None and os.getppid() == parent:
                stop.wait(0.5)
            if proc.poll() is not None:
                log(f"the JVM exited on its own with {proc.returncode}")
                return proc.returncode or 1
            return 0 if _stop(proc) in (0, 143) else 1
        except BaseException:
            _stop(proc)
            raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.realstack.elasticsearch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="HTTP port; 0 picks a free one")
    parser.add_argument("--start-timeout", type=float, default=120.0, help="seconds for the JVM to be ready")
    parser.add_argument("--log-level", default="warn", help="Elasticsearch log level (to stderr)")
    parser.add_argument("--build-only", action="store_true", help="build (or find cached) and verify, then exit")
    parser.add_argument("--write-pins", action="store_true", help="build, then rewrite es-node/artifacts.sha256")
    args = parser.parse_args(argv)
    if not args.host.startswith("127.") and args.host not in ("localhost", "::1"):
        parser.error("the test node binds loopback only")
    try:
        if args.write_pins:
            write_pins(ensure_dist())
            log(f"wrote {PINS}")
            return 0
        if args.build_only:
            dist = ensure_dist()
            verify_pins(dist)
            print(dist)
            return 0
        return serve(args.host, args.port, start_timeout=args.start_timeout, log_level=args.log_level)
    except NodeError as exc:
        log(str(exc))
        return 1


if __name__ == "__main__":
    sys.exit(main())
