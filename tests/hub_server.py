"""A small, real Hugging Face hub HTTP server for tests (no mocks).

It speaks the part of the hub API that ``huggingface_hub.hf_hub_download`` uses
(0.2x, 1.x and 2.x): ``HEAD`` and ``GET`` on ``/{repo_id}/resolve/{revision}/{filename}``
answering with ``X-Repo-Commit`` (40 hex), a quoted ``ETag`` (the git blob sha1, as the
hub does for non-LFS files), ``Content-Length`` and ``Content-Type``; ``Range`` requests
get a 206.  Errors carry the hub's ``X-Error-Code`` header: ``RepoNotFound`` (404),
``GatedRepo`` (401), ``RevisionNotFound`` (404) and ``EntryNotFound`` (404).

Files come from a mapping ``{"org/name": {"config.json": bytes | str}}`` and/or a
directory laid out as ``<root>/<org>/<name>/<filename>``.  Usage::

    with hub_server(root=DATA / "hub") as hub:
        hf_hub_download("org/name", "config.json", endpoint=hub.endpoint, cache_dir=...)
        assert hub.requests == [("HEAD", "/org/name/resolve/main/config.json"), ...]
"""
from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


def commit_for(repo_id: str) -> str:
    """The (deterministic) commit hash the server reports for a repo."""
    return hashlib.sha1(f"vkc-test-commit:{repo_id}".encode()).hexdigest()


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubServer:
    """A running server; ``endpoint`` is its base URL, ``requests`` what it was asked."""

    def __init__(self, files: Mapping[str, Mapping[str, bytes | str]] | None = None,
                 root: Path | None = None, gated: Iterable[str] = ()):
        self.files: dict[str, dict[str, bytes]] = {}
        if root is not None:
            for path in sorted(Path(root).glob("*/*/*")):
                if path.is_file():
                    repo = f"{path.parent.parent.name}/{path.parent.name}"
                    self.files.setdefault(repo, {})[path.name] = path.read_bytes()
        for repo, entries in (files or {}).items():
            for name, data in entries.items():
                self.files.setdefault(repo, {})[name] = data.encode() if isinstance(data, str) else data
        self.gated = set(gated)
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _record(self, method: str, path: str) -> None:
        with self._lock:
            self.requests.append((method, path))

    # -- routing -------------------------------------------------------------------
    def answer(self, path: str) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) for a resolve URL path."""
        parts = [unquote(p) for p in urlsplit(path).path.strip("/").split("/")]
        if "resolve" not in parts or parts.index("resolve") not in (1, 2) or len(parts) < parts.index("resolve") + 3:
            return _error(404, "EntryNotFound" if parts else "RepoNotFound", "Not a resolve URL")
        i = parts.index("resolve")
        repo, revision, filename = "/".join(parts[:i]), parts[i + 1], "/".join(parts[i + 2:])
        if repo not in self.files:
            return _error(404, "RepoNotFound", "Repository not found")
        commit = commit_for(repo)
        if repo in self.gated:
            return _error(401, "GatedRepo", f"Access to model {repo} is restricted.", commit)
        if revision not in ("main", commit):
            return _error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        data = self.files[repo].get(filename)
        if data is None:
            return _error(404, "EntryNotFound", f"{filename} does not exist on \"{revision}\"", commit)
        return 200, {
            "Content-Type": "text/plain; charset=utf-8" if not filename.endswith(".json")
            else "application/json; charset=utf-8",
            "Content-Length": str(len(data)),
            "ETag": f'"{git_blob_sha1(data)}"',
            "X-Repo-Commit": commit,
            "Accept-Ranges": "bytes",
        }, data


def _error(status: int, code: str, message: str, commit: str | None = None):
    body = ('{"error": "' + message.replace('"', "'") + '"}').encode()
    headers = {"Content-Type": "application/json; charset=utf-8", "Content-Length": str(len(body)),
               "X-Error-Code": code, "X-Error-Message": message}
    if commit:
        headers["X-Repo-Commit"] = commit
    return status, headers, body


def _make_handler(server: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def _send(self, with_body: bool) -> None:
            server._record(self.command, self.path)
            status, headers, body = server.answer(self.path)
            rng = self.headers.get("Range")
            if status == 200 and with_body and rng and rng.startswith("bytes="):
                start_s, _, end_s = rng[6:].partition("-")
                start = int(start_s or 0)
                end = min(int(end_s), len(body) - 1) if end_s else len(body) - 1
                headers = {**headers, "Content-Range": f"bytes {start}-{end}/{len(body)}",
                           "Content-Length": str(max(0, end - start + 1))}
                status, body = 206, body[start:end + 1]
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            if with_body:
                self.wfile.write(body)

        def do_HEAD(self) -> None:
            self._send(with_body=False)

        def do_GET(self) -> None:
            self._send(with_body=True)

    return Handler


@contextmanager
def hub_server(files: Mapping[str, Mapping[str, bytes | str]] | None = None,
               root: Path | None = None, gated: Iterable[str] = ()) -> Iterator[HubServer]:
    """Run a :class:`HubServer` on 127.0.0.1 (a free port) for the ``with`` block."""
    server = HubServer(files=files, root=root, gated=gated).start()
    try:
        yield server
    finally:
        server.stop()


def closed_port_endpoint() -> str:
    """An http endpoint on 127.0.0.1 where nothing listens (connection refused)."""
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
