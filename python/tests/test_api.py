"""mlv's Python API against a real repository, a local remote and moto (S3)."""

import io
import json
import os
import random
import shutil
import subprocess
import sys

import pytest

import mlv
from conftest import BUCKET, S3_SECRET, git, make_repo, mlv as run_mlv, s3_setup

IMAGES_A = bytes(range(256)) * 40


def test_the_binary_is_on_path():
    out = subprocess.run(["mlv", "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("mlv ")


def test_read_a_file_from_the_cache(repo):
    assert mlv.read("data/small.txt") == b"version two\n"
    assert mlv.read("data/small.txt", mode="r") == "version two\n"


def test_open_is_a_streaming_context_manager(repo):
    with mlv.open("data/images/a.bin") as f:
        assert isinstance(f, io.BufferedReader)
        first = f.read(10)
        rest = f.read()
    assert first + rest == IMAGES_A
    assert f.closed
    buf = bytearray(100)
    with mlv.open("data/images/a.bin") as f:
        assert f.readinto(buf) == 100
    assert bytes(buf) == IMAGES_A[:100]


def test_text_mode_iterates_over_lines(repo):
    with mlv.open("data/small.txt", rev="v1", mode="r", encoding="utf-8") as f:
        assert list(f) == ["line one\n", "line two\n", "line three\n"]


def test_a_path_inside_a_tracked_directory(repo):
    assert mlv.read("data/images/sub/b.txt") == b"bee\n"
    with pytest.raises(mlv.RefusedError, match="not tracked"):
        mlv.read("data/images/nope.txt")
    with pytest.raises(mlv.RefusedError, match="tracked directory"):
        mlv.read("data/images")


def test_an_older_revision(repo):
    assert mlv.read("data/small.txt", rev="v1") == b"line one\nline two\nline three\n"
    assert mlv.read("data/small.txt", rev="HEAD~1", mode="r").startswith("line one")
    with pytest.raises(mlv.RefusedError, match="no-such-rev"):
        mlv.read("data/small.txt", rev="no-such-rev")


def test_a_git_tracked_file(repo):
    assert mlv.read("params.yaml") == b"lr: 0.1\n"
    assert mlv.read("params.yaml", rev="v1", mode="r") == "lr: 0.1\n"


def test_from_the_remote_when_the_cache_is_empty(repo):
    repo.empty_cache()
    assert mlv.read("data/small.txt") == b"version two\n"
    assert mlv.read("data/small.txt", rev="v1") == b"line one\nline two\nline three\n"
    with mlv.open("data/images/sub/b.txt", mode="r") as f:
        assert f.read() == "bee\n"
    # reading writes nothing to the cache
    assert not (repo.root / ".mlv" / "cache").exists() or repo.cache_objects() == []


def test_from_a_format2_remote_when_the_cache_is_empty(tmp_path, monkeypatch):
    r = make_repo(tmp_path, remote_format="2")
    monkeypatch.chdir(r.root)
    assert (r.remote_dir / "mlv-remote.toml").is_file()
    big = random.Random(1).randbytes(12 << 20)  # chunked: above the 8 MiB threshold
    (r.root / "big.bin").write_bytes(big)
    run_mlv(r.root, "add", "big.bin")
    run_mlv(r.root, "push")
    assert not any(p.name == "big.bin" for p in r.remote_dir.rglob("*"))
    r.empty_cache()
    # a packed blob: one ranged read; a chunked file: its chunks in order; each verified
    assert mlv.read("data/small.txt") == b"version two\n"
    assert mlv.read("data/small.txt", rev="v1") == b"line one\nline two\nline three\n"
    with mlv.open("data/images/a.bin") as f:
        assert f.read() == IMAGES_A
    assert mlv.read("big.bin") == big
    assert not (r.root / ".mlv" / "cache").exists() or r.cache_objects() == []
    # no object URL inside a pack: refused, with the way out
    with pytest.raises(mlv.MlvError) as e:
        mlv.get_url("data/small.txt")
    assert "format 2" in str(e.value)
    assert "--format 1" in e.value.hint


def test_a_damaged_chunk_of_a_format2_remote_raises_integrity_error(tmp_path, monkeypatch):
    r = make_repo(tmp_path, remote_format="2")
    monkeypatch.chdir(r.root)
    big = random.Random(2).randbytes(10 << 20)
    (r.root / "big.bin").write_bytes(big)
    run_mlv(r.root, "add", "big.bin")
    run_mlv(r.root, "push")
    r.empty_cache()
    # flip a byte in the middle of every pack: whichever chunk lies there fails its id
    for pack in (r.remote_dir / "packs").rglob("*"):
        if pack.is_file():
            data = bytearray(pack.read_bytes())
            data[len(data) // 2] ^= 0xFF
            pack.chmod(0o644)
            pack.write_bytes(bytes(data))
    with pytest.raises(mlv.IntegrityError):
        mlv.read("big.bin")


def test_repo_as_a_local_path(repo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert mlv.read("data/small.txt", repo=str(repo.root)) == b"version two\n"
    assert mlv.read("data/images/a.bin", repo=repo.root, rev="v1") == IMAGES_A


def test_repo_as_a_url_to_another_repository(repo, tmp_path, monkeypatch):
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)
    url = "file://" + str(repo.root)
    assert mlv.read("data/small.txt", repo=url) == b"version two\n"
    assert mlv.read("data/images/sub/b.txt", repo=url, rev="v1") == b"bee\n"
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo.root), str(bare))
    assert mlv.read("data/small.txt", repo=str(bare), rev="v1", mode="r").startswith("line one")
    names = {e["path"] for e in mlv.ls(repo=url)}
    assert "data" in names and "params.yaml" in names
    # the same entries as `mlv ls URL --json`
    cli = json.loads(run_mlv(other, "ls", url, "data", "--rev", "v1", "--json").stdout)["entries"]
    assert mlv.ls(repo=url, path="data", rev="v1") == cli
    local = mlv.ls(repo=str(repo.root), path="data", rev="v1")
    assert local == cli


def test_a_corrupt_cache_object_raises_integrity_error(repo):
    pointer = (repo.root / "data" / "small.txt.mlv").read_text()
    digest = next(l.split('"')[1] for l in pointer.splitlines() if l.startswith("digest"))
    obj = repo.object_path(digest)
    os.chmod(obj, 0o644)
    obj.write_bytes(b"version tw0\n")
    with pytest.raises(mlv.IntegrityError) as e:
        mlv.read("data/small.txt")
    assert digest in str(e.value)
    assert e.value.hint
    with pytest.raises(mlv.IntegrityError):
        with mlv.open("data/small.txt") as f:
            f.read()
    obj.write_bytes(b"short\n")
    with pytest.raises(mlv.IntegrityError):
        with mlv.open("data/small.txt", mode="r") as f:
            list(f)


def test_get_url(repo):
    url = mlv.get_url("data/small.txt")
    assert url.startswith(str(repo.remote_dir))
    assert open(url, "rb").read() == b"version two\n"
    urls = mlv.get_url("data/images")
    assert set(urls) == {"a.bin", "sub/b.txt"}
    assert open(urls["sub/b.txt"], "rb").read() == b"bee\n"
    assert set(mlv.get_url("data/images/sub")) == {"b.txt"}


def test_ls(repo):
    entries = mlv.ls()
    by_path = {e["path"]: e for e in entries}
    assert by_path["params.yaml"]["tracked"] == "git"
    assert by_path["data"] == {"path": "data", "type": "dir", "tracked": "git", "size": None, "files": None,
                               "digest": None}
    inside = {e["path"]: e for e in mlv.ls(path="data")}
    assert inside["data/images"] == {
        "path": "data/images",
        "type": "dir",
        "size": len(IMAGES_A) + 4,
        "files": 2,
        "digest": inside["data/images"]["digest"],
        "tracked": "mlv",
    }
    assert inside["data/small.txt"]["size"] == len("version two\n")
    assert len(inside["data/small.txt"]["digest"]) == 64
    sub = mlv.ls(path="data/images")
    assert [(e["path"], e["type"], e["files"]) for e in sub] == [("data/images/a.bin", "file", None),
                                                                 ("data/images/sub", "dir", 1)]
    deep = [e["path"] for e in mlv.ls(path="data/images", recursive=True)]
    assert deep == ["data/images/a.bin", "data/images/sub/b.txt"]


def test_lineage(repo):
    (repo.root / "data" / "out.txt").write_text("derived\n")
    run_mlv(repo.root, "lineage", "record", "-i", "data/small.txt", "-o", "data/out.txt")
    cli = json.loads(run_mlv(repo.root, "lineage", "show", "data/out.txt", "--json").stdout)
    assert mlv.lineage.show("data/out.txt") == cli
    uses_cli = json.loads(run_mlv(repo.root, "lineage", "uses", "data/small.txt", "--json").stdout)
    uses = mlv.lineage.uses("data/small.txt")
    assert uses == uses_cli
    assert isinstance(uses, dict)


def test_errors_have_the_cli_message(repo):
    r = run_mlv(repo.root, "lineage", "show", "data/nothing", check=False)
    with pytest.raises(mlv.MlvError) as e:
        mlv.lineage.show("data/nothing")
    assert r.returncode != 0
    assert str(e.value).splitlines()[0] in r.stderr


def test_s3_remote_on_moto(tmp_path, moto, monkeypatch):
    port = moto()
    r = make_repo(tmp_path, s3_setup(port, monkeypatch))
    monkeypatch.chdir(r.root)
    r.empty_cache()
    assert mlv.read("data/small.txt") == b"version two\n"
    assert mlv.read("data/images/sub/b.txt", rev="v1") == b"bee\n"
    with mlv.open("data/images/a.bin") as f:
        assert f.read() == IMAGES_A
    url = mlv.get_url("data/small.txt")
    assert url.startswith(f"s3://{BUCKET}/store/")


def test_wrong_s3_credentials_raise_without_the_secret(tmp_path, moto, monkeypatch):
    port = moto(enforce_auth=True)
    setup = s3_setup(port, monkeypatch)
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    run_mlv(root, "init")
    setup(root)
    (root / "f.txt").write_text("payload\n")
    run_mlv(root, "add", "f.txt")
    shutil.rmtree(root / ".mlv" / "cache")
    monkeypatch.chdir(root)
    with pytest.raises(mlv.MlvError) as e:
        mlv.read("f.txt")
    text = str(e.value) + repr(e.value) + str(e.value.hint)
    assert S3_SECRET not in text
    assert "s3://" in text
    print(str(e.value))


MEMORY_SCRIPT = r"""
import resource, sys, mlv
def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
before = rss_mb()
n = 0
with mlv.open(sys.argv[1]) as f:
    while True:
        b = f.read(1 << 20)
        if not b:
            break
        n += len(b)
print(n, rss_mb() - before)
"""


@pytest.mark.parametrize("where", ["cache", "remote", "format2-remote"])
def test_open_streams_with_flat_memory(tmp_path, monkeypatch, where):
    # a format 2 remote serves the file as chunks (ranged reads of its packs)
    repo = make_repo(tmp_path, remote_format="2" if where == "format2-remote" else "1")
    monkeypatch.chdir(repo.root)
    size = 64 << 20
    big = repo.root / "big.bin"
    with open(big, "wb") as f:
        chunk = os.urandom(1 << 20)
        for i in range(size >> 20):
            f.write(chunk[i:] + chunk[:i])
    run_mlv(repo.root, "add", "big.bin")
    if where != "cache":
        run_mlv(repo.root, "push")
        repo.empty_cache()
    big.unlink()
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, "big.bin"], cwd=repo.root,
                         capture_output=True, text=True, check=True).stdout.split()
    assert int(out[0]) == size
    assert int(out[1]) < 32, f"reading {size >> 20} MiB grew the process by {out[1]} MiB"


def test_threads_share_one_file(repo):
    import threading

    chunks = []
    with mlv.open("data/images/a.bin") as f:
        def worker():
            while True:
                b = f.read(100)
                if not b:
                    return
                chunks.append(len(b))

        ts = [threading.Thread(target=worker) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in ts)
    assert sum(chunks) == len(IMAGES_A)
