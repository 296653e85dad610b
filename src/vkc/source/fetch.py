"""Find, fetch, verify and unpack a vLLM source distribution.

The default is a pinned release fetched once from the package index through its
simple API (PEP 691 JSON, falling back to the PEP 503 HTML page), the way pip finds
files.  The archive's sha256 is checked (against the pinned value for the default
release, against the index's own hash for others), then unpacked into
``<cache>/vllm-<version>/`` with a lock and an atomic rename, so concurrent first
runs cannot corrupt the cache.
"""
from __future__ import annotations

import hashlib
import html.parser
import json
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from filelock import FileLock

from vkc.errors import SourceError
from vkc.records import SourceTree

DEFAULT_VERSION = "0.33.0"
KNOWN_SHA256 = {
    "0.33.0": "f4c33c2503d52bb411146afa9618a4f48bed68912f617e6803ac8d76e4c74112",
}
DEFAULT_INDEX = "https://pypi.org/simple"
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
    return (os.environ.get("VKC_INDEX_URL") or os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX).rstrip("/")



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
        tf.extractall(dest, members=members)  # noqa: S202 (members checked above)
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
    if (final / _MARKER).is_file():
        meta = json.loads((final / _MARKER).read_text())
        return SourceTree(root=final / "src", version=version, origin=meta["url"], sha256=meta["sha256"])
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SourceError(f"cannot create the cache folder {base}: {exc.strerror}",
                          hint="set VKC_CACHE_DIR to a writable folder") from None
    with FileLock(str(base / f"vllm-{version}.lock")):
        if (final / _MARKER).is_file():  # another process finished while we waited
            return resolve_source(None, version)
        if os.environ.get("VKC_OFFLINE", "") not in ("", "0"):
            raise SourceError(f"vLLM {version} is not cached in {base} and VKC_OFFLINE is set",
                              hint="run once online to cache it, or pass --vllm PATH")
        url, index_sha = find_sdist(version)
        expected = KNOWN_SHA256.get(version) or index_sha
        with tempfile.TemporaryDirectory(dir=base, prefix=f".vllm-{version}-") as tmp:
            tmpdir = Path(tmp)
            archive = tmpdir / f"vllm-{version}.tar.gz"
            got = _download(url, archive)
            if expected and got != expected:
                raise SourceError(f"sha256 mismatch for vllm-{version}.tar.gz: got {got}, expected {expected}",
                                  hint="the download was corrupted or tampered with; retry")
            top = _safe_extract(archive, tmpdir / "unpacked")
            check_tree(top, url)
            stage = tmpdir / "final"
            stage.mkdir()
            top.rename(stage / "src")
            (stage / _MARKER).write_text(json.dumps({"url": url, "sha256": got, "version": version}))
            if final.exists():  # a stale, incomplete folder from a killed run
                shutil.rmtree(final)
            os.replace(stage, final)
    return resolve_source(None, version)
