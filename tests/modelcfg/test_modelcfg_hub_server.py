"""The local hub server itself, spoken to with plain urllib and with huggingface_hub."""
from __future__ import annotations

import re
import urllib.error
import urllib.request
from pathlib import Path

from huggingface_hub import hf_hub_download

from hub_server import commit_for, git_blob_sha1, hub_server

BODY = b'{"hidden_size": 64}\n'


def _req(method, url):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method)) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_resolve_head_and_get():
    with hub_server(files={"org/name": {"config.json": BODY}}) as hub:
        url = f"{hub.endpoint}/org/name/resolve/main/config.json"
        status, headers, body = _req("HEAD", url)
        assert status == 200 and body == b""
        assert re.fullmatch(r"[0-9a-f]{40}", headers["X-Repo-Commit"])
        assert headers["X-Repo-Commit"] == commit_for("org/name")
        assert headers["ETag"] == f'"{git_blob_sha1(BODY)}"' and headers["Content-Length"] == str(len(BODY))
        assert _req("GET", url)[2] == BODY
        assert _req("GET", f"{hub.endpoint}/org/name/resolve/{commit_for('org/name')}/config.json")[2] == BODY
        assert hub.requests[0] == ("HEAD", "/org/name/resolve/main/config.json")


def test_error_codes():
    with hub_server(files={"org/name": {"config.json": BODY}}) as hub:
        status, headers, _ = _req("HEAD", f"{hub.endpoint}/org/other/resolve/main/config.json")
        assert status == 404 and headers["X-Error-Code"] == "RepoNotFound"
        status, headers, _ = _req("GET", f"{hub.endpoint}/org/name/resolve/main/missing.json")
        assert status == 404 and headers["X-Error-Code"] == "EntryNotFound" and "X-Repo-Commit" in headers
        status, headers, _ = _req("GET", f"{hub.endpoint}/org/name/resolve/v9/config.json")
        assert status == 404 and headers["X-Error-Code"] == "RevisionNotFound"


def test_serves_hf_hub_download_from_directory(tmp_path):
    root = tmp_path / "hub"
    (root / "org" / "name").mkdir(parents=True)
    (root / "org" / "name" / "config.json").write_bytes(BODY)
    with hub_server(root=root) as hub:
        path = hf_hub_download("org/name", "config.json", endpoint=hub.endpoint, cache_dir=tmp_path / "cache")
    assert Path(path).read_bytes() == BODY
    assert f"snapshots/{commit_for('org/name')}/config.json" in path
