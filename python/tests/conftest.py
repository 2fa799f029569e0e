"""A real mlv repository made by the `mlv` binary (the wheel's, on PATH; or MLV_BIN), in a
temporary directory with a hermetic git environment, and moto for S3 (MLV_TEST_MOTO, else
moto_server on PATH, else the repository's .ci/venv/bin/moto_server)."""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
BUCKET = "mlv-py"
S3_KEY_ID = "AKIAMLVPYTEST"
S3_SECRET = "py-secret-value-5c1f"


def mlv_bin():
    b = os.environ.get("MLV_BIN") or shutil.which("mlv")
    if not b:
        pytest.fail("the mlv binary is not on PATH (install the wheel) and MLV_BIN is unset")
    return b


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(autouse=True)
def hermetic(tmp_path, monkeypatch):
    """A clean environment for the binary and for the in-process API alike."""
    home = tmp_path / "home"
    home.mkdir()
    for k in list(os.environ):
        if k.startswith(("MLV_", "AWS_", "GIT_")) and k not in ("MLV_BIN", "MLV_TEST_MOTO"):
            monkeypatch.delenv(k)
    p = closed_port()
    env = {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
        "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
        "NO_COLOR": "1",
        "MLV_NO_PROGRESS": "1",
        "AWS_METADATA_ENDPOINT": f"http://127.0.0.1:{p}",
        "AWS_EC2_METADATA_DISABLED": "true",
        "GCE_METADATA_HOST": f"127.0.0.1:{p}",
        "AZURE_MSI_ENDPOINT": f"http://127.0.0.1:{p}",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    yield


def run(cwd, *args, check=True):
    r = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"{args} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def mlv(cwd, *args, check=True):
    return run(cwd, mlv_bin(), *args, check=check)


def git(cwd, *args):
    return run(cwd, "git", *args)


class Repo:
    """A repository with `data/small.txt` (a file), `data/images/` (a directory with a
    sub-directory) and `params.yaml` (git), pushed to `remote_dir`, committed twice:
    v1 (tag) then v2 (small.txt changed)."""

    def __init__(self, root, remote_dir):
        self.root = root
        self.remote_dir = remote_dir

    def cache_objects(self):
        return [p for p in (self.root / ".mlv" / "cache").rglob("*") if p.is_file() and len(p.name) == 64]

    def empty_cache(self):
        shutil.rmtree(self.root / ".mlv" / "cache")

    def object_path(self, digest):
        for p in (self.root / ".mlv" / "cache").rglob(digest):
            return p
        raise AssertionError(f"{digest} not in the cache")


def make_repo(tmp_path, remote_setup=None, remote_format="1"):
    """A repository pushed to a local remote (`remote_format`: 1, whose objects have URLs, or 2)
    or to the remote `remote_setup(root)` configures."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    mlv(root, "init")
    data = root / "data"
    (data / "images" / "sub").mkdir(parents=True)
    (data / "small.txt").write_text("line one\nline two\nline three\n")
    (data / "images" / "a.bin").write_bytes(bytes(range(256)) * 40)
    (data / "images" / "sub" / "b.txt").write_text("bee\n")
    (root / "params.yaml").write_text("lr: 0.1\n")
    remote_dir = tmp_path / "remote"
    if remote_setup is None:
        remote_dir.mkdir()
        mlv(root, "remote", "add", "-d", "origin", str(remote_dir), "--format", remote_format)
    else:
        remote_setup(root)
    mlv(root, "add", "data/small.txt", "data/images")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "v1")
    git(root, "tag", "v1")
    (data / "small.txt").write_text("version two\n")
    mlv(root, "add", "data/small.txt")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "v2")
    mlv(root, "push", "--all-commits")
    return Repo(root, remote_dir)


@pytest.fixture
def repo(tmp_path, monkeypatch):
    r = make_repo(tmp_path)
    monkeypatch.chdir(r.root)
    return r


def moto_bin():
    b = os.environ.get("MLV_TEST_MOTO") or shutil.which("moto_server")
    if not b:
        p = REPO_ROOT / ".ci" / "venv" / "bin" / "moto_server"
        b = str(p) if p.is_file() else None
    if not b:
        if os.environ.get("CI"):
            pytest.fail("moto_server not found (MLV_TEST_MOTO, PATH, .ci/venv/bin/moto_server)")
        pytest.skip("moto_server not found")
    return b


@pytest.fixture
def moto():
    """Starts moto with the bucket; yields a function giving (port, enforce_auth)."""
    procs = []

    def start(enforce_auth=False):
        env = dict(os.environ)
        if enforce_auth:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = "1"
        proc = subprocess.Popen(
            [moto_bin(), "-H", "127.0.0.1", "-p", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )
        procs.append(proc)
        deadline = time.time() + 30
        port = None
        while time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
            if m and int(m.group(1)) != 0:
                port = int(m.group(1))
                break
        assert port, "moto did not report a port"
        req = urllib.request.Request(f"http://127.0.0.1:{port}/{BUCKET}", method="PUT")
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200
        return port

    yield start
    for p in procs:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


def s3_setup(port, monkeypatch, remote_format="1"):
    def setup(root):
        mlv(root, "remote", "add", "-d", "s3", f"s3://{BUCKET}/store", "--format", remote_format)
        for k, v in [
            ("endpoint", f"http://127.0.0.1:{port}"),
            ("region", "us-east-1"),
            ("allow_http", "true"),
            ("timeout", "5"),
            ("connect_timeout", "2"),
            ("retries", "1"),
            ("retry_timeout", "3"),
        ]:
            mlv(root, "remote", "modify", "s3", k, v)

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)
    return setup
