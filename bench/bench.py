#!/usr/bin/env python3
"""mlv vs DVC benchmark driver (stdlib only).

Started by bench/run.sh, which installs the tools and exports DVC_BIN, MLV_BIN, MOTO_SERVER_BIN
and S3S_FS_BIN. For every dataset and pass it runs the same steps with DVC and mlv, alternating
the tools step by step (the order flips every pass), measures the physical anchors on the same
data, and prints one Markdown table per dataset plus a JSON file with every sample.

Times are wall-clock seconds with a warm page cache; memory is the peak RSS of the command's
process (os.wait4). Medians over passes for time, the maximum over passes for memory.
"""

import argparse
import datetime
import hashlib
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

MIB = 1 << 20
HUGE_FILES = None  # --huge-files
KIB = 1 << 10

# ---------------------------------------------------------------------------------------------
# Datasets


def dataset_spec(name, quick):
    """(number of files, size function, layout function) for a dataset."""
    if name == "many":
        n = 2_000 if quick else 20_000
        return dict(n=n, sizes=("uniform", 1 * KIB, 16 * KIB), fanout=(20, 10))
    if name == "mixed":
        n = 20 if quick else 200
        return dict(n=n, sizes=("fixed", 5 * MIB), fanout=(1, 1))
    if name == "large":
        return dict(n=2, sizes=("fixed", (64 * MIB) if quick else (1 << 30)), fanout=(1, 1))
    if name == "huge-count":
        n = HUGE_FILES or (20_000 if quick else 1_000_000)
        return dict(n=n, sizes=("fixed", 1 * KIB), fanout=(100, 10))
    raise SystemExit(f"unknown dataset {name}")


def file_size(spec, rng):
    kind = spec["sizes"][0]
    if kind == "fixed":
        return spec["sizes"][1]
    lo, hi = spec["sizes"][1], spec["sizes"][2]
    return rng.randint(lo, hi)


def relpaths(spec):
    n = spec["n"]
    a, b = spec["fanout"]
    out = []
    for i in range(n):
        if a == 1 and b == 1:
            out.append(f"f{i:06d}.bin")
        else:
            out.append(f"d{i % a:03d}/e{(i // a) % b:02d}/f{i:07d}.bin")
    return out


def write_random(path, size, seed):
    rng = random.Random(seed)
    chunk = 16 * MIB
    with open(path, "wb") as f:
        left = size
        while left > 0:
            k = min(chunk, left)
            f.write(rng.randbytes(k))
            left -= k


def generate_dataset(name, quick, home):
    """Generates the dataset once (deterministic) under home/datasets and returns its data dir."""
    spec = dataset_spec(name, quick)
    tag = f"{name}-{spec['n']}-{spec['sizes'][1]}-v1"
    root = os.path.join(home, "datasets", tag)
    data = os.path.join(root, "data")
    stamp = os.path.join(root, ".complete")
    if os.path.exists(stamp):
        return data, spec
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(data)
    log(f"generating dataset {tag} ...")
    t = time.time()
    rng = random.Random(f"sizes-{name}")
    for rel in relpaths(spec):
        p = os.path.join(data, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        write_random(p, file_size(spec, rng), f"{name}/{rel}")
    open(stamp, "w").close()
    log(f"generated {tag} in {time.time() - t:.1f} s")
    return data, spec


def chosen_for_change(spec):
    """1% of the files (at least one), spread evenly."""
    rels = relpaths(spec)
    n = len(rels)
    return [r for i, r in enumerate(rels) if i % 100 == 50] if n >= 100 else [rels[n // 2]]


def expected_manifest(src, spec, name, full):
    """Manifest of src after modify_one_percent, computed without writing anything."""
    m = tree_manifest(src, full)
    for rel in chosen_for_change(spec):
        size = m[rel][0]
        h = None
        if full:
            hasher = hashlib.blake2b()
            rng = random.Random(f"modified/{name}/{rel}")
            left = size
            while left > 0:
                k = min(16 * MIB, left)
                hasher.update(rng.randbytes(k))
                left -= k
            h = hasher.hexdigest()
        m[rel] = (size, h)
    return m


def modify_one_percent(data, spec, name):
    """Replaces 1% of the files (at least one) with new content of the same size."""
    chosen = chosen_for_change(spec)
    for rel in chosen:
        p = os.path.join(data, rel)
        size = os.path.getsize(p)
        tmp = p + ".bench-tmp"
        write_random(tmp, size, f"modified/{name}/{rel}")
        os.replace(tmp, p)
    return len(chosen)


def tree_manifest(data, full):
    out = {}
    for dirpath, dirnames, filenames in os.walk(data):
        for fn in filenames:
            p = os.path.join(dirpath, fn)
            rel = os.path.relpath(p, data)
            st = os.lstat(p)
            if full:
                with open(p, "rb") as f:
                    h = hashlib.file_digest(f, "blake2b").hexdigest()
            else:
                h = None
            out[rel] = (st.st_size, h)
    return out


def tree_bytes(data):
    total = 0
    for dirpath, _, filenames in os.walk(data):
        for fn in filenames:
            total += os.lstat(os.path.join(dirpath, fn)).st_size
    return total


# ---------------------------------------------------------------------------------------------
# Running commands


LOG_FILE = None


def log(msg):
    line = f"[bench {time.strftime('%H:%M:%S')}] {msg}"
    print(line, file=sys.stderr, flush=True)
    if LOG_FILE:
        LOG_FILE.write(line + "\n")
        LOG_FILE.flush()


class Result:
    def __init__(self, ok, secs, rss_kib, rc, note=""):
        self.ok, self.secs, self.rss_kib, self.rc, self.note = ok, secs, rss_kib, rc, note

    def to_json(self):
        return dict(ok=self.ok, secs=self.secs, peak_rss_mib=self.rss_kib / 1024 if self.rss_kib else None,
                    rc=self.rc, note=self.note)


TIME_BIN = "/usr/bin/time"


def run(argv, cwd, env, logpath, timeout=None, shell=False, check=False):
    """Runs argv, returns Result with wall time and the command's peak RSS.

    The peak RSS comes from GNU time (`%M`), not from os.wait4 on our own child: Linux carries
    the pre-exec high-water mark of the forked (Python-sized) process into the child's ru_maxrss,
    which would put a floor of this driver's own RSS under every figure.
    """
    rss_file = logpath + ".rss"
    if shell:
        argv = ["/bin/sh", "-c", argv]
    cmd = [TIME_BIN, "-q", "-f", "%M", "-o", rss_file] + list(argv)
    with open(logpath, "ab") as lf:
        lf.write(f"\n$ (cd {cwd}; {' '.join(argv)})\n".encode())
        lf.flush()
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=lf, stderr=lf,
                             start_new_session=True)
        timed_out = []

        def kill():
            timed_out.append(True)
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill) if timeout else None
        if timer:
            timer.start()
        try:
            p.wait()
        except BaseException:
            kill()
            p.wait()
            raise
        finally:
            if timer:
                timer.cancel()
        secs = time.perf_counter() - t0
        rss = 0
        try:
            with open(rss_file) as f:
                for line in f:
                    line = line.strip()
                    if line.isdigit():
                        rss = int(line)
            os.unlink(rss_file)
        except OSError:
            pass
        lf.write(f"# rc={p.returncode} {secs:.3f}s maxrss={rss}KiB\n".encode())
    ok = p.returncode == 0 and not timed_out
    note = "timeout" if timed_out else ("" if ok else f"rc={p.returncode}")
    if check and not ok:
        raise RuntimeError(f"command failed ({note}): {argv} in {cwd}; see {logpath}")
    return Result(ok, secs, rss, p.returncode, note)


def sh(cmd, cwd, env, logpath, **kw):
    return run(cmd, cwd, env, logpath, shell=True, **kw)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, secs=60):
    end = time.time() + secs
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early (rc={proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not come up")


# ---------------------------------------------------------------------------------------------
# S3 servers

ACCESS_KEY = "mlvbenchaccess"
SECRET_KEY = "mlvbenchsecret0123456789"
BUCKET = "bench"


class S3Server:
    def __init__(self, kind, out):
        self.kind = kind
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        logf = open(os.path.join(out, f"{kind}.log"), "wb")
        if kind == "s3s-fs":
            self.root = os.path.join(out, "s3s-fs-root")
            shutil.rmtree(self.root, ignore_errors=True)
            os.makedirs(os.path.join(self.root, BUCKET))
            argv = [os.environ["S3S_FS_BIN"], "--host", "127.0.0.1", "--port", str(self.port),
                    "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY, self.root]
        else:
            self.root = None
            argv = [os.environ["MOTO_SERVER_BIN"], "-H", "127.0.0.1", "-p", str(self.port)]
        self.proc = subprocess.Popen(argv, stdout=logf, stderr=logf, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        wait_port(self.port, self.proc)
        if kind == "moto":
            self._moto_bucket()
        log(f"{kind} listening on {self.endpoint} (pid {self.proc.pid})")

    def _moto_bucket(self):
        req = urllib.request.Request(f"{self.endpoint}/{BUCKET}", method="PUT", data=b"")
        urllib.request.urlopen(req, timeout=30).read()

    def clear_prefix(self, prefix, discard):
        if self.kind == "s3s-fs":
            discard(os.path.join(self.root, BUCKET, prefix))

    def reset(self, discard):
        """Drops everything (between passes)."""
        if self.kind == "s3s-fs":
            discard(os.path.join(self.root, BUCKET))
            os.makedirs(os.path.join(self.root, BUCKET))
        else:
            req = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST", data=b"")
            urllib.request.urlopen(req, timeout=60).read()
            self._moto_bucket()

    def rclone_env(self, env):
        name = self.rclone_name()
        up = name.upper()
        env = dict(env)
        env.update({
            f"RCLONE_CONFIG_{up}_TYPE": "s3",
            f"RCLONE_CONFIG_{up}_PROVIDER": "Other",
            f"RCLONE_CONFIG_{up}_ENDPOINT": self.endpoint,
            f"RCLONE_CONFIG_{up}_ACCESS_KEY_ID": ACCESS_KEY,
            f"RCLONE_CONFIG_{up}_SECRET_ACCESS_KEY": SECRET_KEY,
            f"RCLONE_CONFIG_{up}_REGION": "us-east-1",
            f"RCLONE_CONFIG_{up}_FORCE_PATH_STYLE": "true",
            f"RCLONE_CONFIG_{up}_NO_CHECK_BUCKET": "true",
        })
        return env

    def rclone_name(self):
        return "s3sfs" if self.kind == "s3s-fs" else "moto"

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except Exception:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


# ---------------------------------------------------------------------------------------------
# Tools


class Tool:
    name = ""

    def __init__(self, env, timeout):
        self.env = env
        self.timeout = timeout

    def supports(self, step):
        return True


class Dvc(Tool):
    name = "dvc"

    def __init__(self, env, timeout):
        super().__init__(env, timeout)
        self.bin = os.environ["DVC_BIN"]

    def init(self):
        return [self.bin, "init", "-q"]

    def after_init(self):
        return [[self.bin, "config", "core.analytics", "false"],
                [self.bin, "config", "core.check_update", "false"]]

    def add(self):
        return [self.bin, "add", "-q", "data"]

    def status(self):
        return [self.bin, "status"]

    def remote_local(self, path):
        return [[self.bin, "remote", "add", "-d", "local", path]]

    def remote_s3(self, name, url, endpoint):
        return [[self.bin, "remote", "add", name, url],
                [self.bin, "remote", "modify", name, "endpointurl", endpoint],
                [self.bin, "remote", "modify", name, "region", "us-east-1"]]

    def push(self, remote=None):
        return [self.bin, "push", "-q"] + (["-r", remote] if remote else [])

    def pull(self, remote=None):
        return [self.bin, "pull", "-q"] + (["-r", remote] if remote else [])

    def checkout(self):
        return [self.bin, "checkout", "-q"]

    def gc(self):
        return [self.bin, "gc", "-w", "-f", "-q"]


class Mlv(Tool):
    name = "mlv"

    def __init__(self, env, timeout):
        super().__init__(env, timeout)
        self.bin = os.environ["MLV_BIN"]
        self.has = {}
        self.helps = {}
        for cmd in ("remote", "push", "pull", "fetch", "gc"):
            p = subprocess.run([self.bin, cmd, "--help"], env=env, capture_output=True, text=True)
            self.has[cmd] = p.returncode == 0
            self.helps[cmd] = p.stdout if p.returncode == 0 else ""
        push_help = self.helps["push"]
        self.remote_flag = "--remote" in push_help or " -r," in push_help or " -r " in push_help
        log("mlv commands: " + ", ".join(f"{k}={'yes' if v else 'n/a'}" for k, v in self.has.items()))

    def supports(self, step):
        needs = {"push": ("remote", "push"), "pull": ("remote", "pull"), "gc": ("gc",)}
        for prefix, cmds in needs.items():
            if step.startswith(prefix):
                return all(self.has[c] for c in cmds)
        return True

    def init(self):
        return [self.bin, "init"]

    def after_init(self):
        return []

    def add(self):
        return [self.bin, "add", "data"]

    def status(self):
        return [self.bin, "status"]

    def remote_local(self, path):
        return [[self.bin, "remote", "add", "local", path, "--default"]]

    def remote_s3(self, name, url, endpoint):
        return [[self.bin, "remote", "add", name, url],
                [self.bin, "remote", "modify", name, "endpoint", endpoint],
                [self.bin, "remote", "modify", name, "allow_http", "true"],
                [self.bin, "remote", "modify", name, "region", "us-east-1"]]

    def _remote(self, remote):
        if not remote:
            return []
        return ["-r", remote] if self.remote_flag else [remote]

    def push(self, remote=None):
        return [self.bin, "push"] + self._remote(remote)

    def pull(self, remote=None):
        return [self.bin, "pull"] + self._remote(remote)

    def checkout(self):
        return [self.bin, "checkout"]

    def gc(self):
        extra = os.environ.get("MLV_BENCH_GC_ARGS")
        if extra is not None:
            return [self.bin, "gc"] + extra.split()
        args = [self.bin, "gc"]
        h = self.helps["gc"]
        if "--workspace" in h:
            args.append("--workspace")
        if "--grace" in h:
            # like `dvc gc -w -f`: no grace period for objects an add may still be using
            args += ["--grace", "0"]
        if "--yes" in h:
            args.append("--yes")
        elif "--force" in h:
            args.append("--force")
        return args


# ---------------------------------------------------------------------------------------------
# Steps

ANCHOR_FOR = {
    "add (cold)": "cp -r",
    "status, no change": "git status",
    "status, 1% changed": "git status",
    "push local": "cp -r",
    "pull local (fresh clone)": "cp -r",
    "checkout (data deleted)": "cp -r",
}


def s3_anchor(step):
    for kind in ("s3s-fs", "moto"):
        if step == f"push S3 ({kind})":
            return f"rclone up ({kind})"
        if step == f"pull S3 ({kind})":
            return f"rclone down ({kind})"
    return None


def git(args, cwd, env, logpath):
    return run(["git"] + args, cwd, env, logpath, check=True)


def git_commit(cwd, env, logpath, msg):
    git(["add", "-A"], cwd, env, logpath)
    run(["git", "commit", "-q", "--allow-empty", "-m", msg], cwd, env, logpath, check=True)


def verify(data, expected, full):
    if not os.path.isdir(data):
        return "data missing"
    got = tree_manifest(data, full)
    if got != expected:
        missing = len(set(expected) - set(got))
        extra = len(set(got) - set(expected))
        diff = sum(1 for k in expected if k in got and got[k] != expected[k])
        return f"tree differs: {missing} missing, {extra} extra, {diff} different"
    return ""


class Bench:
    def __init__(self, args):
        self.args = args
        self.home = args.home
        self.out = args.out
        self.samples = {}  # (dataset, step, tool) -> [Result]
        self.meta = {}
        base = dict(os.environ)
        base.update({
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_METADATA_ENDPOINT": "http://127.0.0.1:9",
            "AWS_EC2_METADATA_DISABLED": "true",
            "GCE_METADATA_HOST": "127.0.0.1:9",
            "AZURE_MSI_ENDPOINT": "http://127.0.0.1:9",
            "DVC_NO_ANALYTICS": "1",
            "MLV_NO_PROGRESS": "1",
            "NO_COLOR": "1",
            "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
            "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@localhost",
            "GIT_CONFIG_NOSYSTEM": "1",
        })
        # Loopback http only: a CA bundle from the environment breaks rclone's S3 client.
        base.pop("AWS_CA_BUNDLE", None)
        base.pop("AWS_PROFILE", None)
        base.pop("AWS_SESSION_TOKEN", None)
        # Isolate git's and DVC's global configuration from the user's.
        ghome = os.path.join(self.out, "home")
        os.makedirs(ghome, exist_ok=True)
        base["HOME"] = ghome
        base["XDG_CONFIG_HOME"] = os.path.join(ghome, ".config")
        with open(os.path.join(ghome, ".gitconfig"), "w") as f:
            f.write("[init]\n\tdefaultBranch = main\n[commit]\n\tgpgsign = false\n"
                    "[safe]\n\tdirectory = *\n")
        self.env = base
        tools = []
        for t in args.tools:
            tools.append(Dvc(base, args.timeout) if t == "dvc" else Mlv(base, args.timeout))
        self.tools = tools
        self.servers = {}

    def record(self, dataset, step, tool, res):
        self.samples.setdefault((dataset, step, tool), []).append(res)
        tag = "ok" if res.ok else f"FAIL {res.note}"
        log(f"  {dataset:10s} {step:28s} {tool:12s} {res.secs:8.3f} s {res.rss_kib / 1024:8.1f} MiB  {tag}")

    def na(self, dataset, step, tool):
        self.samples.setdefault((dataset, step, tool), []).append(None)

    # -----------------------------------------------------------------------------------------

    def discard(self, path):
        """Removes a tree that a later step or anchor no longer needs. On ext4 without a journal
        (this machine) the inode allocator skips every inode freed in the last 60 s (360 s while
        its inode-table block is dirty), looking each one's block up (`recently_deleted()` in
        fs/ext4/ialloc.c): creating files after a mass deletion costs 10-20x more, for minutes. So on many-file datasets
        nothing is deleted while the dataset runs: trees are moved to a trash emptied when the
        dataset ends."""
        if not os.path.lexists(path):
            return
        if not self.keep_trash:
            shutil.rmtree(path, ignore_errors=True)
            return
        self.trash_n = getattr(self, "trash_n", 0) + 1
        os.makedirs(self.trash, exist_ok=True)
        os.rename(path, os.path.join(self.trash, str(self.trash_n)))

    def empty_trash(self, paths, wait):
        """Deletes `paths` and the trash and syncs; then, if `wait`, waits `--settle` seconds
        for the freed inodes to age out before a many-file dataset."""
        for path in paths + [self.trash]:
            shutil.rmtree(path, ignore_errors=True)
        subprocess.run(["sync"], check=False)
        if wait and self.args.settle > 0:
            log(f"waiting {self.args.settle:g} s for freed inodes to age out (--settle)")
            time.sleep(self.args.settle)

    def run_dataset(self, name):
        src, spec = generate_dataset(name, self.args.quick, self.home)
        nbytes = tree_bytes(src)
        self.meta[name] = dict(files=spec["n"], bytes=nbytes)
        tools = [t for t in self.tools if not (name == "huge-count" and t.name not in self.args.huge_tools)]
        full_verify = spec["n"] <= 100_000
        dwork = os.path.join(self.out, "work", name)
        self.trash = os.path.join(self.out, "work", "trash")
        self.keep_trash = 1000 <= spec["n"] <= 100_000
        self.empty_trash([dwork], wait=self.keep_trash)
        os.makedirs(dwork)
        logpath = os.path.join(self.out, "logs", f"{name}.log")
        os.makedirs(os.path.dirname(logpath), exist_ok=True)

        # Expected tree after the 1% change, computed once (without writing it).
        expected = expected_manifest(src, spec, name, full_verify)

        # git status anchor: a repository with the same tree committed (built once).
        git_anchor = None
        huge = name == "huge-count"
        self.cur_servers = {k: v for k, v in self.servers.items() if not huge or k in self.args.huge_s3}
        self.cur_anchors = self.args.huge_anchors if huge else self.args.anchors
        if "git status" in self.cur_anchors and spec["n"] <= 100_000 and nbytes <= 512 * MIB:
            git_anchor = os.path.join(dwork, "git-anchor")
            os.makedirs(git_anchor)
            git(["init", "-q"], git_anchor, self.env, logpath)
            run(["cp", "-a", src, os.path.join(git_anchor, "data")], dwork, self.env, logpath, check=True)
            git_commit(git_anchor, self.env, logpath, "data")
            run(["git", "status"], git_anchor, self.env, logpath)

        for p in range(self.args.passes):
            order = tools if p % 2 == 0 else list(reversed(tools))
            log(f"dataset {name}: pass {p + 1}/{self.args.passes} (order: {', '.join(t.name for t in order)})")
            self.run_pass(name, spec, src, dwork, p, order, expected, full_verify, logpath)
            self.run_anchors(name, src, dwork, p, git_anchor, logpath)
            for srv in self.servers.values():
                srv.reset(self.discard)
            if not self.args.keep:
                self.discard(os.path.join(dwork, f"pass{p}"))
        self.empty_trash([] if self.args.keep else [dwork], wait=False)

    def run_pass(self, name, spec, src, dwork, p, order, expected, full_verify, logpath):
        env = self.env
        ctx = {}
        for t in order:
            base = os.path.join(dwork, f"pass{p}", t.name)
            os.makedirs(base)
            repo = os.path.join(base, "repo")
            os.makedirs(repo)
            git(["init", "-q"], repo, env, logpath)
            ctx[t.name] = dict(base=base, repo=repo)

        def step(label, fn, needs=None):
            """fn(tool, c) -> argv or None; runs it for every tool, in this pass's order."""
            for t in order:
                c = ctx[t.name]
                if not t.supports(needs or label):
                    self.na(name, label, t.name)
                    continue
                argv = fn(t, c)
                if argv is None:
                    self.na(name, label, t.name)
                    continue
                res = run(argv, c.get("cwd", c["repo"]), env, logpath, timeout=t.timeout)
                post = c.pop("post", None)
                if post:
                    msg = post(t, c, res)
                    if msg:
                        res.ok = False
                        res.note = msg
                self.record(name, label, t.name, res)
                c.pop("cwd", None)

        def untimed(t, c, cmds, cwd=None):
            for argv in cmds:
                r = run(argv, cwd or c["repo"], env, logpath)
                if not r.ok:
                    return False
            return True

        # init
        def do_init(t, c):
            c["post"] = lambda t, c, r: None if untimed(t, c, t.after_init()) else "config failed"
            return t.init()
        step("init", do_init)
        for t in order:
            repo = ctx[t.name]["repo"]
            git_commit(repo, env, logpath, "init")
            # The data arrives after init (untimed), as a user's would, and is never committed to git.
            run(["cp", "-a", src, os.path.join(repo, "data")], repo, env, logpath, check=True)
        # ... and is on disk, as data produced a while ago is: otherwise the first tool that syncs
        # (mlv makes its cache durable with syncfs) pays for writing back the harness's copies.
        run(["sync"], dwork, env, logpath, check=True)

        step("add (cold)", lambda t, c: t.add())
        for t in order:
            git_commit(ctx[t.name]["repo"], env, logpath, "add")

        step("status, no change", lambda t, c: t.status())
        for t in order:
            modify_one_percent(os.path.join(ctx[t.name]["repo"], "data"), spec, name)
        step("status, 1% changed", lambda t, c: t.status())
        step("add after change", lambda t, c: t.add())
        for t in order:
            git_commit(ctx[t.name]["repo"], env, logpath, "add 2")

        # remotes (untimed configuration, committed so that clones see it)
        for t in order:
            c = ctx[t.name]
            if not t.supports("push"):
                continue
            c["local_remote"] = os.path.join(c["base"], "remote")
            os.makedirs(c["local_remote"])
            ok = untimed(t, c, t.remote_local(c["local_remote"]))
            for kind, srv in self.cur_servers.items():
                prefix = f"{name}-p{p}-{t.name}"
                ok = ok and untimed(t, c, t.remote_s3(srv.rclone_name(), f"s3://{BUCKET}/{prefix}", srv.endpoint))
            c["remote_ok"] = ok
            git_commit(c["repo"], env, logpath, "remotes")

        def need_remote(fn):
            def wrapped(t, c):
                if not c.get("remote_ok"):
                    c["post"] = lambda t, c, r: "remote configuration failed"
                return fn(t, c)
            return wrapped

        step("push local", need_remote(lambda t, c: t.push()), needs="push")
        for kind, srv in self.cur_servers.items():
            step(f"push S3 ({kind})", need_remote(lambda t, c, srv=srv: t.push(srv.rclone_name())), needs="push")
        if self.cur_servers:
            kind = "s3s-fs" if "s3s-fs" in self.cur_servers else next(iter(self.cur_servers))
            srv = self.cur_servers[kind]
            step(f"push S3 again, no-op ({kind})",
                 need_remote(lambda t, c, srv=srv: t.push(srv.rclone_name())), needs="push")

        def pull_into(label, remote):
            def fn(t, c):
                clone = os.path.join(c["base"], "clone-" + label)
                self.discard(clone)
                git(["clone", "-q", c["repo"], clone], c["base"], env, logpath)
                c["cwd"] = clone

                def post(t, c, r):
                    msg = verify(os.path.join(clone, "data"), expected, full_verify) if r.ok else ""
                    if not self.args.keep:
                        self.discard(clone)
                    return msg
                c["post"] = post
                return t.pull(remote)
            return fn

        step("pull local (fresh clone)", need_remote(pull_into("local", None)), needs="pull")
        for kind, srv in self.cur_servers.items():
            step(f"pull S3 ({kind})", need_remote(pull_into(kind, srv.rclone_name())), needs="pull")

        def do_checkout(t, c):
            self.discard(os.path.join(c["repo"], "data"))
            c["post"] = lambda t, c, r: verify(os.path.join(c["repo"], "data"), expected, full_verify) if r.ok else ""
            return t.checkout()
        step("checkout (data deleted)", do_checkout)

        step("gc", lambda t, c: t.gc(), needs="gc")

    def run_anchors(self, name, src, dwork, p, git_anchor, logpath):
        env = self.env
        a = self.cur_anchors
        adir = os.path.join(dwork, "anchor")
        os.makedirs(adir, exist_ok=True)
        parent, leaf = os.path.split(src)
        if "b3sum" in a:
            self.record(name, "b3sum (2 threads)", "anchor",
                        sh(f"find {leaf} -type f -print0 | xargs -0 b3sum --num-threads 2 > /dev/null",
                           parent, env, logpath))
        if "cp" in a:
            dst = os.path.join(adir, "cp")
            self.record(name, "cp -r", "anchor", run(["cp", "-r", src, dst], adir, env, logpath))
            self.discard(dst)
            # mlv makes its cache durable (fsync/syncfs); cp -r alone leaves dirty pages behind.
            self.record(name, "cp -r + sync", "anchor",
                        sh(f"cp -r {src} {dst} && sync -f {dst}", adir, env, logpath))
            self.discard(dst)
            # A second copy anchor: cp's per-file cost is erratic on this kind of machine.
            self.record(name, "tar-pipe copy", "anchor",
                        sh(f"mkdir {dst} && tar -C {src} -cf - . | tar -C {dst} -xf -", adir, env, logpath))
            self.discard(dst)
        if "read" in a:
            self.record(name, "read all files", "anchor",
                        sh(f"find {leaf} -type f -print0 | xargs -0 cat > /dev/null", parent, env, logpath))
        if git_anchor:
            self.record(name, "git status", "anchor", run(["git", "status"], git_anchor, env, logpath))
        if "rclone" in a:
            flags = self.args.rclone_flags.split()
            for kind, srv in self.cur_servers.items():
                renv = srv.rclone_env(env)
                remote = f"{srv.rclone_name()}:{BUCKET}/rclone-{name}-p{p}"
                self.record(name, f"rclone up ({kind})", "anchor",
                            run(["rclone", "copy"] + flags + [src, remote], adir, renv, logpath))
                dst = os.path.join(adir, "rclone-down")
                self.record(name, f"rclone down ({kind})", "anchor",
                            run(["rclone", "copy"] + flags + [remote, dst], adir, renv, logpath))
                self.discard(dst)
                srv.clear_prefix(f"rclone-{name}-p{p}", self.discard)
        self.discard(adir)

    # -----------------------------------------------------------------------------------------

    def summary(self, dataset, step, tool):
        rs = self.samples.get((dataset, step, tool))
        if not rs:
            return None
        if all(r is None for r in rs):
            return dict(status="n/a")
        good = [r for r in rs if r is not None and r.ok]
        bad = [r for r in rs if r is not None and not r.ok]
        if bad:
            return dict(status="fail", note=bad[0].note, n=len(rs), failed=len(bad),
                        secs=statistics.median([r.secs for r in good]) if good else None)
        return dict(status="ok", secs=statistics.median([r.secs for r in good]),
                    rss_mib=max(r.rss_kib for r in good) / 1024, n=len(good),
                    all_secs=[round(r.secs, 3) for r in good])

    def table(self):
        lines = []
        steps_order = []
        for (d, s, t) in self.samples:
            if s not in steps_order:
                steps_order.append(s)
        for d in self.args.datasets:
            if d not in self.meta:
                continue
            m = self.meta[d]
            lines.append(f"### {d}: {m['files']:,} files, {m['bytes'] / MIB:,.0f} MiB, "
                         f"{self.args.passes} pass{'es' if self.args.passes > 1 else ''}")
            lines.append("")
            lines.append("| step | DVC s | DVC MiB | mlv s | mlv MiB | DVC/mlv | anchor | anchor s | mlv/anchor |")
            lines.append("| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
            anchor_rows = []
            for s in steps_order:
                if (d, s, "anchor") in self.samples:
                    anchor_rows.append(s)
                    continue
                if not any((d, s, t.name) in self.samples for t in self.tools):
                    continue
                cells = [s]
                vals = {}
                for tname in ("dvc", "mlv"):
                    r = self.summary(d, s, tname)
                    if r is None:
                        cells += ["not run", ""]
                    elif r["status"] == "ok":
                        vals[tname] = r["secs"]
                        cells += [f"{r['secs']:.2f}", f"{r['rss_mib']:.0f}"]
                    elif r["status"] == "n/a":
                        cells += ["n/a", ""]
                    else:
                        cells += [f"fail ({r['note']})", ""]
                cells.append(f"{vals['dvc'] / vals['mlv']:.1f}x" if "dvc" in vals and "mlv" in vals and vals["mlv"] > 0 else "")
                an = ANCHOR_FOR.get(s) or s3_anchor(s)
                ar = self.summary(d, an, "anchor") if an else None
                if ar and ar["status"] == "ok":
                    cells += [an, f"{ar['secs']:.2f}",
                              f"{vals['mlv'] / ar['secs']:.2f}" if "mlv" in vals and ar["secs"] > 0 else ""]
                else:
                    cells += ["", "", ""]
                lines.append("| " + " | ".join(cells) + " |")
            for s in anchor_rows:
                r = self.summary(d, s, "anchor")
                if r["status"] == "ok":
                    lines.append(f"| anchor: {s} | | | | | | | {r['secs']:.2f} | |")
                else:
                    lines.append(f"| anchor: {s} | | | | | | | fail ({r.get('note')}) | |")
            lines.append("")
        # Memory growth per file (huge-count vs many), when both ran.
        if "huge-count" in self.meta and "many" in self.meta:
            for s in ("add (cold)", "status, no change", "push local", "pull local (fresh clone)",
                      "checkout (data deleted)"):
                a = self.summary("many", s, "mlv")
                b = self.summary("huge-count", s, "mlv")
                if a and b and a.get("status") == "ok" and b.get("status") == "ok":
                    dn = self.meta["huge-count"]["files"] - self.meta["many"]["files"]
                    per = (b["rss_mib"] - a["rss_mib"]) * MIB / dn
                    lines.append(f"- mlv {s}: peak memory grows {per:,.0f} bytes per file "
                                 f"(many {a['rss_mib']:.0f} MiB → huge-count {b['rss_mib']:.0f} MiB)")
            lines.append("")
        return "\n".join(lines)

    def to_json(self):
        out = dict(meta=self.meta, args=vars(self.args), machine=machine_info(self.out),
                   samples=[])
        for (d, s, t), rs in self.samples.items():
            out["samples"].append(dict(dataset=d, step=s, tool=t,
                                       runs=[r.to_json() if r else None for r in rs],
                                       summary=self.summary(d, s, t)))
        return out

    def any_failed(self):
        for rs in self.samples.values():
            for r in rs:
                if r is not None and not r.ok:
                    return True
        return False


def machine_info(out):
    def cmd(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()
        except Exception:
            return ""
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = f.readline().split(":")[1].strip()
    except OSError:
        pass
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    fs = cmd(["df", "-T", out]).splitlines()
    return dict(nproc=os.cpu_count(), cpu=cpu, mem=mem, kernel=platform.release(),
                fs=fs[-1].split()[1] if len(fs) > 1 else "",
                dvc=cmd([os.environ["DVC_BIN"], "--version"]) if os.environ.get("DVC_BIN") else "",
                mlv=cmd([os.environ["MLV_BIN"], "--version"]) if os.environ.get("MLV_BIN") else "",
                rclone=cmd(["rclone", "--version"]).splitlines()[0] if shutil.which("rclone") else "",
                b3sum=cmd(["b3sum", "--version"]),
                date=datetime.datetime.now().isoformat(timespec="seconds"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small datasets, one pass (smoke run)")
    ap.add_argument("--datasets", default="many,mixed,large")
    ap.add_argument("--passes", type=int, default=None)
    ap.add_argument("--tools", default="dvc,mlv")
    ap.add_argument("--huge-tools", default="mlv", help="tools run on huge-count (default: mlv only)")
    ap.add_argument("--s3", default=None,
                    help="S3 servers: s3s-fs,moto (default: both in quick mode, s3s-fs otherwise)")
    ap.add_argument("--anchors", default="b3sum,cp,read,git status,rclone")
    ap.add_argument("--huge-files", type=int, default=None, help="files in huge-count (default 1,000,000)")
    ap.add_argument("--huge-anchors", default="b3sum,cp,read,git status",
                    help="anchors on huge-count (rclone of 1M objects takes tens of minutes)")
    ap.add_argument("--huge-s3", default="s3s-fs", help="S3 servers used on huge-count")
    ap.add_argument("--rclone-flags", default="--transfers 8 --checkers 16")
    ap.add_argument("--timeout", type=float, default=3600, help="per command, seconds")
    ap.add_argument("--out", default=None)
    ap.add_argument("--home", default=None)
    ap.add_argument("--keep", action="store_true", help="keep work directories")
    ap.add_argument("--settle", type=float, default=None,
                    help="seconds to wait before a many-file dataset for earlier deletions to age "
                         "out (default 370; 0 in quick mode)")
    args = ap.parse_args()
    args.datasets = [d for d in args.datasets.split(",") if d]
    args.tools = [t for t in args.tools.split(",") if t]
    args.huge_tools = [t for t in args.huge_tools.split(",") if t]
    args.anchors = [a.strip() for a in args.anchors.split(",")]
    args.huge_anchors = [a.strip() for a in args.huge_anchors.split(",")]
    args.huge_s3 = [a.strip() for a in args.huge_s3.split(",")]
    global HUGE_FILES
    HUGE_FILES = args.huge_files
    if args.passes is None:
        args.passes = 1 if args.quick else 3
    if args.settle is None:
        args.settle = 0 if args.quick else 370
    if args.s3 is None:
        args.s3 = "s3s-fs,moto" if args.quick else "s3s-fs"
    s3 = [s for s in args.s3.split(",") if s]
    here = os.path.dirname(os.path.abspath(__file__))
    args.home = os.path.abspath(args.home or os.environ.get("MLV_BENCH_HOME") or os.path.join(here, ".cache"))
    args.out = os.path.abspath(args.out or os.path.join(args.home, "runs", time.strftime("%Y%m%d-%H%M%S")))
    os.makedirs(args.out, exist_ok=True)
    global LOG_FILE
    LOG_FILE = open(os.path.join(args.out, "bench.log"), "a")
    log(f"results in {args.out}")

    b = Bench(args)
    stop = []

    def on_signal(signum, frame):
        stop.append(signum)
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    try:
        for kind in s3:
            b.servers[kind] = S3Server(kind, args.out)
        for d in args.datasets:
            b.run_dataset(d)
    except KeyboardInterrupt:
        log("interrupted")
    finally:
        for srv in b.servers.values():
            srv.stop()
        shutil.rmtree(os.path.join(args.out, "s3s-fs-root"), ignore_errors=True)
    table = b.table()
    mi = machine_info(args.out)
    header = (f"Machine: {mi['nproc']} cores ({mi['cpu']}), {mi['mem']} RAM, Linux {mi['kernel']}, {mi['fs']}; "
              f"{mi['dvc'] and 'DVC ' + mi['dvc']}; {mi['mlv']}; {mi['rclone']}; {mi['b3sum']}. "
              f"Warm page cache; seconds are medians over passes, MiB the highest peak RSS.\n")
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(header + "\n" + table + "\n")
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(b.to_json(), f, indent=1)
    print(header)
    print(table)
    log(f"wrote {args.out}/results.md and results.json")
    if stop:
        return 130
    return 1 if b.any_failed() else 0


if __name__ == "__main__":
    sys.exit(main())
