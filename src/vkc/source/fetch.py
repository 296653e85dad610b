"""Find, fetch, verify and unpack a vLLM source distribution.

The default is a pinned release fetched once from the package index through its
simple API (PEP 691 JSON, falling back to the PEP 503 HTML page), the way pip finds
files.  The archive's sha256 is checked (against the pinned value for the default
release, against the index's own hash for others), then unpacked into
``<cache>/vllm-<version>/`` with a lock and an atomic rename, so concurrent first
runs cannot corrupt the cache.  The archive stays beside it (``vllm-<version>.tar.gz``) and
the tree carries a manifest of the tarball's members and sizes (:mod:`vkc.source.manifest`),
checked on every use: a missing or resized file, or a damaged completion marker, unpacks the
tree again from the archive (downloading it again only when it is gone or corrupt).
"""
from __future__ import annotations

import hashlib
import html.parser
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

from filelock import FileLock

from vkc.atomic import replace_file
from vkc.errors import SourceError
from vkc.records import SourceTree
from vkc.source.manifest import MANIFEST, NO_MANIFEST, damage, read_marker, tar_manifest

DEFAULT_VERSION = "0.33.0"
KNOWN_SHA256 = {
    "0.33.0": "f4c33c2503d52bb411146afa9618a4f48bed68912f617e6803ac8d76e4c74112",
}
_MARKER = ".vkc-complete"


def cache_dir() -> Path:
    """``$VKC_CACHE_DIR``, else ``$XDG_CACHE_HOME/vkc``, else ``~/.cache/vkc``."""
    env = os.environ.get("VKC_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "vkc"


def _index_url() -> str:
    """The package index the way pip finds it: ``VKC_INDEX_URL``, ``PIP_INDEX_URL``, pip's own
    configuration files (``pip config list``), else pip's default index."""
    env = os.environ.get("VKC_INDEX_URL") or os.environ.get("PIP_INDEX_URL")
    return (env or _pip_config_index() or _pip_default_index()).rstrip("/")


_PIP_KEYS = ("global.index-url", "install.index-url", "download.index-url")


def _pip_config_index() -> str | None:
    try:
        out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                             timeout=30, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found: dict[str, str] = {}
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() in _PIP_KEYS:
            found[key.strip()] = value.strip().strip("'\"")
    return next((found[k] for k in ("install.index-url", "download.index-url", "global.index-url") if k in found),
                None)


def _pip_default_index() -> str:
    try:
        from pip._internal.models.index import PyPI  # pip's own default, so vkc names no host itself
    except ImportError:
        raise SourceError("no package index configured and pip is not importable",
                          hint="set PIP_INDEX_URL (or VKC_INDEX_URL), or pass --vllm PATH") from None
    return str(PyPI.simple_url)



class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.links.append(href)


def find_sdist(version: str, index: str | None = None, timeout: float = 30.0) -> tuple[str, str | None]:
    """Return (url, sha256-from-index or None) of ``vllm-<version>.tar.gz``."""
    index = (index or _index_url()).rstrip("/")
    page = f"{index}/vllm/"
    want = f"vllm-{version}.tar.gz"
    req = urllib.request.Request(page, headers={
        "Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            ctype = resp.headers.get("Content-Type", "")
            body = resp.read()
    except (urllib.error.URLError, OSError) as exc:
        raise SourceError(
            f"cannot reach the package index at {page}: {getattr(exc, 'reason', exc)}",
            hint="connect to the network once so the vLLM source can be cached, "
                 "or pass --vllm PATH to use a local vLLM checkout") from None
    if "json" in ctype:
        files = json.loads(body).get("files", [])
        for f in files:
            if f.get("filename") == want:
                return urllib.parse.urljoin(page, f["url"]), f.get("hashes", {}).get("sha256")
    else:
        parser = _Links()
        parser.feed(body.decode("utf-8", "replace"))
        for href in parser.links:
            url, _, frag = href.partition("#")
            if url.rsplit("/", 1)[-1] == want:
                sha = frag.split("=", 1)[1] if frag.startswith("sha256=") else None
                return urllib.parse.urljoin(page, url), sha
    raise SourceError(f"the package index has no source distribution {want}",
                      hint="check --vllm-version; vkc needs a release that ships an sdist")


def _download(url: str, dest: Path, timeout: float = 60.0) -> str:
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(dest, "wb") as out:
            while chunk := resp.read(1 << 20):
                h.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError) as exc:
        raise SourceError(f"download of {url} failed: {getattr(exc, 'reason', exc)}",
                          hint="retry when online, or pass --vllm PATH") from None
    return h.hexdigest()


def _safe_extract(archive: Path, dest: Path) -> Path:
    with tarfile.open(archive, "r:gz") as tf:
        for m in tf.getmembers():
            p = Path(m.name)
            if p.is_absolute() or ".." in p.parts or m.issym() or m.islnk() or m.isdev():
                if m.issym() or m.islnk():
                    continue
                raise SourceError(f"unsafe member {m.name!r} in {archive.name}")
        members = [m for m in tf.getmembers() if not (m.issym() or m.islnk() or m.isdev())]
        tf.extractall(dest, members=members)
    tops = [p for p in dest.iterdir()]
    if len(tops) != 1 or not tops[0].is_dir():
        raise SourceError(f"{archive.name} does not unpack to one folder")
    return tops[0]


def check_tree(root: Path, origin: str) -> None:
    if not (root / "vllm").is_dir():
        raise SourceError(f"{origin} is not a vLLM source tree (no vllm/ folder in {root})",
                          hint="pass the folder that holds vllm/ and csrc/")


def _version_of(root: Path) -> str:
    pkg = root / "PKG-INFO"
    if pkg.is_file():
        for line in pkg.read_text(errors="replace").splitlines():
            if line.startswith("Version:"):
                return line.split(":", 1)[1].strip()
    vf = root / "vllm" / "_version.py"
    if vf.is_file():
        for line in vf.read_text(errors="replace").splitlines():
            if line.startswith(("__version__", "version")) and "=" in line:
                return line.split("=", 1)[1].strip().strip("'\"")
    return "local"


def resolve_source(vllm_path: str | os.PathLike | None = None,
                   version: str | None = None) -> SourceTree:
    """The tree to work on: a local one (``--vllm``) or a cached release."""
    if vllm_path is not None:
        root = Path(vllm_path).expanduser().resolve()
        if not root.is_dir():
            raise SourceError(f"--vllm {vllm_path}: no such directory")
        check_tree(root, str(vllm_path))
        return SourceTree(root=root, version=_version_of(root), origin=str(root))
    version = version or DEFAULT_VERSION
    if not version.replace(".", "").replace("rc", "").replace("post", "").isalnum():
        raise SourceError(f"--vllm-version {version!r} is not a release number")
    base = cache_dir()
    final = base / f"vllm-{version}"
    tree, why = _cached_tree(final, version)
    if tree is not None:
        return tree
    damaged = f"the cached vLLM {version} source in {final} {why}" if why else ""
    try:
        base.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(base / f"vllm-{version}.lock"))
        lock.acquire()
    except OSError as exc:
        raise _unwritable(base, damaged, exc) from None
    try:
        tree, why = _cached_tree(final, version)     # another process may have finished while we waited
        if tree is not None:
            return tree
        if why:
            _note(f"the cached vLLM {version} source in {final} {why}; unpacking it again")
        archive = base / f"vllm-{version}.tar.gz"
        meta = read_marker(final / _MARKER) or read_marker(archive.with_suffix(".url")) or {}
        if not _archive_ok(archive, KNOWN_SHA256.get(version) or meta.get("sha256")):
            _fetch_archive(version, base, archive)
            meta = {}
        _install(archive, final, base, version, meta.get("url") or _archive_url(archive), _sha256(archive))
    except OSError as exc:   # the folder is writable for the lock but not for the tree (disk full, quota)
        raise _unwritable(base, damaged, exc) from None
    finally:
        lock.release()
    tree, why = _cached_tree(final, version)
    if tree is None:
        raise SourceError(f"the vLLM {version} source just unpacked into {final} does not check ({why})",
                          hint=f"delete {final} and retry, or pass --vllm PATH")
    return tree


def _unwritable(base: Path, damaged: str, exc: OSError) -> SourceError:
    """One line for a cache folder vkc cannot write: what it needed to do there, and why not."""
    what = f"cannot write the cache folder {base}: {exc.strerror or exc}"
    if damaged:
        return SourceError(f"{damaged} and {what}, so it cannot be unpacked again",
                           hint="make the cache folder writable, set VKC_CACHE_DIR to a writable folder, "
                                "or pass --vllm PATH")
    return SourceError(what, hint="set VKC_CACHE_DIR to a writable folder, or pass --vllm PATH")


def _cached_tree(final: Path, version: str) -> tuple[SourceTree | None, str]:
    """The cached tree when it is complete and matches its manifest, else ``(None, why)`` ("" when
    nothing is cached); the caller unpacks it again, saying why once it holds the lock."""
    meta = read_marker(final / _MARKER)
    if meta is None:
        return None, "has a damaged completion marker" if (final / _MARKER).exists() else ""
    why = damage(final)
    if why == NO_MANIFEST and not (final.parent / f"vllm-{version}.tar.gz").is_file() \
            and os.environ.get("VKC_OFFLINE", "") not in ("", "0"):
        # offline with nothing to check it against: use it, saying so (online, a checked copy is fetched)
        _note(f"the cached vLLM {version} source in {final} predates vkc's manifests and its archive is "
              f"gone, so it is used unchecked (VKC_OFFLINE); run once online to replace it with a checked copy")
        why = None
    if why is not None:
        return None, f"{'cannot be checked' if why == NO_MANIFEST else 'is damaged'} ({why})"
    return SourceTree(root=final / "src", version=version, origin=meta["url"], sha256=meta["sha256"]), ""


def _note(text: str) -> None:
    import sys
    print(f"vkc: {text}", file=sys.stderr, flush=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _archive_ok(archive: Path, expected: str | None) -> bool:
    return archive.is_file() and expected is not None and _sha256(archive) == expected


def _archive_url(archive: Path) -> str:
    meta = read_marker(archive.with_suffix(".url"))
    return meta["url"] if meta else archive.as_uri()


def _fetch_archive(version: str, base: Path, archive: Path) -> None:
    """Download the sdist into ``archive`` (hash-checked, atomic rename)."""
    if os.environ.get("VKC_OFFLINE", "") not in ("", "0"):
        raise SourceError(f"vLLM {version} is not cached in {base} (or the cache is damaged and its archive "
                          "is gone) and VKC_OFFLINE is set",
                          hint=f"run once online to cache it, delete {base / f'vllm-{version}'} and retry online, "
                               "or pass --vllm PATH")
    url, index_sha = find_sdist(version)
    expected = KNOWN_SHA256.get(version) or index_sha
    with tempfile.TemporaryDirectory(dir=base, prefix=f".vllm-{version}-") as tmp:
        part = Path(tmp) / archive.name
        got = _download(url, part)
        if expected and got != expected:
            raise SourceError(f"sha256 mismatch for vllm-{version}.tar.gz: got {got}, expected {expected}",
                              hint="the download was corrupted or tampered with; retry")
        os.replace(part, archive)
    replace_file(archive.with_suffix(".url"), json.dumps({"url": url, "sha256": got}))


def _install(archive: Path, final: Path, base: Path, version: str, url: str, sha: str) -> None:
    """Unpack ``archive`` into ``final`` with its manifest and marker (atomic rename)."""
    with tempfile.TemporaryDirectory(dir=base, prefix=f".vllm-{version}-") as tmp:
        tmpdir = Path(tmp)
        try:
            top = _safe_extract(archive, tmpdir / "unpacked")
            files = tar_manifest(archive)
        except (tarfile.TarError, EOFError, zlib.error) as exc:   # cut short, or not a gzipped tar at all
            archive.unlink(missing_ok=True)                       # so the next run downloads it again
            raise SourceError(f"the cached archive {archive} is corrupt ({type(exc).__name__}: {exc}) and was "
                              "removed", hint="retry (online) to download it again, or pass --vllm PATH") from None
        check_tree(top, url)
        stage = tmpdir / "final"
        stage.mkdir()
        top.rename(stage / "src")
        (stage / MANIFEST).write_text(json.dumps({"files": files}, sort_keys=True))
        (stage / _MARKER).write_text(json.dumps({"url": url, "sha256": sha, "version": version}))
        if final.exists():  # a stale, incomplete or damaged folder
            shutil.rmtree(final)
        os.replace(stage, final)
