#!/usr/bin/env python3
"""Issue 14's targets: data from another repository, Python reads, history pushes (stdlib only).

Started by bench/run-registry.sh (which installs the tools like bench/run.sh and exports DVC_BIN,
MLV_BIN, S3S_FS_BIN).
Scenarios (--scenarios, default all):

  get       `many` (20,000 files) in a registry repository whose remote is S3 (s3s-fs):
            `mlv pull` in a fresh clone, `mlv get REGISTRY data`, `dvc get REGISTRY data`
            (DVC's registry holds the same data on the same server), alternating tools.
            Target: get within 1.2x of pull.
  (Python reads: bench/python_read.py, run with the wheel installed.)
  push-all  a dataset with 1% of its files changed in each of 200 commits: `mlv push -A` and
            `dvc push -A` to a fresh local remote; and, under strace, how many times mlv opens
            any one cached object (target: once: no manifest read twice).

Times are wall-clock seconds, medians over passes, with spreads (min-max); memory is peak RSS.
"""

import argparse
import collections
import os
import re
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402
from scenario import Runner as Base, fmt, median  # noqa: E402


class Runner(Base):
    def __init__(self, args):
        super().__init__(args)

    def git_repo(self, path):
        os.makedirs(path)
        self.sh(["git", "init", "-q", "-b", "main"], path)

    # -----------------------------------------------------------------------------------------

    def scenario_get(self):
        src, spec = B.generate_dataset("many", self.args.quick, self.args.home)
        server = B.S3Server("s3s-fs", self.out)
        try:
            self._get(src, spec, server)
        finally:
            server.stop()

    def _get(self, src, spec, server):
        work = os.path.join(self.out, "get")
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        expected = B.tree_manifest(src, full=False)
        # the registries: one per tool, same data, same server, separate prefixes
        regs = {}
        for tool in ("mlv", "dvc"):
            reg = os.path.join(work, f"registry-{tool}")
            self.git_repo(reg)
            url = f"s3://{B.BUCKET}/{tool}-registry"
            if tool == "mlv":
                self.sh([self.mlv, "init"], reg)
                cmds = [[self.mlv, "remote", "add", "s3", url, "--default"],
                        [self.mlv, "remote", "modify", "s3", "endpoint", server.endpoint],
                        [self.mlv, "remote", "modify", "s3", "allow_http", "true"],
                        [self.mlv, "remote", "modify", "s3", "region", "us-east-1"]]
            else:
                self.sh([self.dvc, "init", "-q"], reg)
                cmds = [[self.dvc, "config", "core.analytics", "false"],
                        [self.dvc, "remote", "add", "-d", "s3", url],
                        [self.dvc, "remote", "modify", "s3", "endpointurl", server.endpoint],
                        [self.dvc, "remote", "modify", "s3", "region", "us-east-1"]]
            for c in cmds:
                self.sh(c, reg)
            shutil.copytree(src, os.path.join(reg, "data"))
            tool_bin = self.mlv if tool == "mlv" else self.dvc
            self.sh([tool_bin, "add"] + ([] if tool == "mlv" else ["-q"]) + ["data"], reg)
            self.sh([tool_bin, "push"] + ([] if tool == "mlv" else ["-q"]), reg)
            B.git_commit(reg, self.env, self.log, "registry")
            regs[tool] = reg
        # warm mlv's clone cache once (untimed): `get` reuses it, as repeated calls do
        self.sh([self.mlv, "ls", regs["mlv"]], work)
        times = collections.defaultdict(list)
        rss = collections.defaultdict(list)
        steps = ["mlv pull (fresh clone)", "mlv get", "dvc get"]
        for p in range(self.args.passes):
            order = steps if p % 2 == 0 else list(reversed(steps))
            for step in order:
                dest = os.path.join(work, f"p{p}-{step.split()[0]}-{step.split()[1]}")
                os.makedirs(dest)
                if step.startswith("mlv pull"):
                    self.sh(["git", "clone", "-q", regs["mlv"], "clone"], dest)
                    cwd = os.path.join(dest, "clone")
                    res = self.sh([self.mlv, "pull"], cwd)
                    got = os.path.join(cwd, "data")
                elif step == "mlv get":
                    res = self.sh([self.mlv, "get", regs["mlv"], "data", "-o", "data"], dest)
                    got = os.path.join(dest, "data")
                else:
                    res = self.sh([self.dvc, "get", regs["dvc"], "data", "-o", "data"], dest)
                    got = os.path.join(dest, "data")
                B.log(f"  get  {step:24s} {res.secs:8.3f} s  {res.rss_kib / 1024:7.1f} MiB")
                bad = B.verify(got, expected, False)
                if bad:
                    raise RuntimeError(f"{step}: {bad}")
                times[step].append(res.secs)
                rss[step].append(res.rss_kib / 1024)
        pull = median(times["mlv pull (fresh clone)"])
        for step in steps:
            ratio = median(times[step]) / pull if pull else None
            self.rows.append(("get", f"many ({spec['n']} files), s3s-fs", step, fmt(times[step]),
                              f"{max(rss[step]):.0f} MiB", f"{ratio:.2f}x of pull" if ratio else ""))

    # -----------------------------------------------------------------------------------------

    # -----------------------------------------------------------------------------------------

    def scenario_push_all(self):
        n_files = self.args.push_files
        commits = self.args.commits
        work = os.path.join(self.out, "push-all")
        shutil.rmtree(work, ignore_errors=True)
        spec = dict(n=n_files, sizes=("uniform", 1 * B.KIB, 16 * B.KIB), fanout=(20, 10))
        rels = B.relpaths(spec)
        repos = {}
        for tool in ("mlv", "dvc"):
            repo = os.path.join(work, tool)
            self.git_repo(repo)
            tool_bin = self.mlv if tool == "mlv" else self.dvc
            if tool == "mlv":
                self.sh([self.mlv, "init"], repo)
            else:
                self.sh([self.dvc, "init", "-q"], repo)
                self.sh([self.dvc, "config", "core.analytics", "false"], repo)
            rng = B.random.Random("push-all")
            for rel in rels:
                path = os.path.join(repo, "data", rel)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                B.write_random(path, rng.randint(1 * B.KIB, 16 * B.KIB), f"push-all/{rel}")
            t0 = time.time()
            for c in range(commits):
                if c:
                    # 1% of the files, a different 1% each commit
                    for i in range(c % 100, n_files, 100):
                        path = os.path.join(repo, "data", rels[i])
                        B.write_random(path, os.path.getsize(path), f"push-all/{c}/{rels[i]}")
                self.sh([tool_bin, "add"] + ([] if tool == "mlv" else ["-q"]) + ["data"], repo)
                B.git_commit(repo, self.env, self.log, f"commit {c}")
            B.log(f"push-all: {tool}: {commits} commits made in {time.time() - t0:.0f} s")
            repos[tool] = repo
        times = collections.defaultdict(list)
        rss = collections.defaultdict(list)
        steps = ["mlv push -A", "dvc push -A"]
        for p in range(self.args.passes):
            order = steps if p % 2 == 0 else list(reversed(steps))
            for step in order:
                tool = step.split()[0]
                repo = repos[tool]
                remote = os.path.join(work, f"remote-{tool}-{p}")
                if tool == "mlv":
                    self.sh([self.mlv, "remote", "add", f"r{p}", remote, "--default"], repo)
                    res = self.sh([self.mlv, "push", "-A"], repo)
                else:
                    self.sh([self.dvc, "remote", "add", "-f", "-d", f"r{p}", remote], repo)
                    res = self.sh([self.dvc, "push", "-q", "-A"], repo)
                times[step].append(res.secs)
                rss[step].append(res.rss_kib / 1024)
                B.log(f"  push-all {step:12s} {res.secs:8.3f} s  {res.rss_kib / 1024:7.1f} MiB")
        label = f"{n_files} files, {commits} commits, 1% changed per commit"
        for step in steps:
            ratio = median(times["dvc push -A"]) / median(times[step])
            self.rows.append(("push-all", label, step, fmt(times[step]),
                              f"{max(rss[step]):.0f} MiB", f"mlv {ratio:.1f}x faster" if step != steps[1] else ""))
        # How often does one push -A open any one cached object? To a fresh remote each manifest
        # is opened twice (parsed, then uploaded); to a remote that has everything, once.
        if shutil.which("strace"):
            repo = repos["mlv"]
            remote = os.path.join(work, "remote-mlv-strace")
            self.sh([self.mlv, "remote", "add", "strace", remote, "--default"], repo)
            for what in ("fresh remote", "remote up to date"):
                trace = os.path.join(work, "strace.txt")
                self.sh(["strace", "-f", "-qq", "-e", "trace=openat", "-o", trace, self.mlv, "push", "-A"], repo)
                opens = collections.Counter()
                pat = re.compile(r'openat\([^"]*"([^"]*/\.mlv/cache/[0-9a-f]{2}/[0-9a-f]{64})"')
                with open(trace) as f:
                    for line in f:
                        m = pat.search(line)
                        if m and "ENOENT" not in line:
                            opens[m.group(1)] += 1
                most = max(opens.values()) if opens else 0
                twice = sum(1 for v in opens.values() if v > 1)
                self.rows.append(("push-all", label, f"mlv push -A under strace, {what}", "", "",
                                  f"{len(opens)} cached objects opened, {twice} more than once (max {most})"))

    # -----------------------------------------------------------------------------------------



def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", default="get,push-all")
    ap.add_argument("--quick", action="store_true", help="small data, one pass (smoke run)")
    ap.add_argument("--passes", type=int, default=None)
    ap.add_argument("--commits", type=int, default=None, help="push-all: commits (default 200)")
    ap.add_argument("--push-files", type=int, default=None, help="push-all: files (default 2,000)")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--out", default=None)
    ap.add_argument("--home", default=None)
    args = ap.parse_args()
    if args.passes is None:
        args.passes = 1 if args.quick else 3
    if args.commits is None:
        args.commits = 10 if args.quick else 200
    if args.push_files is None:
        args.push_files = 200 if args.quick else 2000
    here = os.path.dirname(os.path.abspath(__file__))
    args.home = os.path.abspath(args.home or os.environ.get("MLV_BENCH_HOME") or os.path.join(here, ".cache"))
    args.out = os.path.abspath(args.out or os.path.join(args.home, "runs", "registry-" + time.strftime("%Y%m%d-%H%M%S")))
    os.makedirs(args.out, exist_ok=True)
    B.LOG_FILE = open(os.path.join(args.out, "bench.log"), "a")
    B.log(f"results in {args.out}")
    r = Runner(args)
    for s in args.scenarios.split(","):
        getattr(r, "scenario_" + s.replace("-", "_"))()
    r.report()


if __name__ == "__main__":
    main()
