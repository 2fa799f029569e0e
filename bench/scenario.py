"""Shared by the scenario benchmarks (bench/registry.py, bench/pipeline.py): sample summaries,
a runner holding the benchmark environment, and the results table (stdlib only)."""

import argparse
import os
import statistics

import bench as B


def fmt(samples):
    """`median s (min-max)` of the samples that ran."""
    ok = [s for s in samples if s is not None]
    if not ok:
        return "n/a"
    med = statistics.median(ok)
    return f"{med:.3f} s ({min(ok):.3f}-{max(ok):.3f})"


def median(samples):
    ok = [s for s in samples if s is not None]
    return statistics.median(ok) if ok else None


class Runner:
    """The environment of bench.Bench (isolated HOME, loopback credentials), the tools from
    the environment (MLV_BIN, DVC_BIN), a command log, and result rows."""

    def __init__(self, args):
        self.args = args
        self.out = args.out
        self.b = B.Bench(argparse.Namespace(
            home=args.home, out=args.out, tools=["dvc", "mlv"], timeout=args.timeout))
        self.env = self.b.env
        self.mlv = os.environ["MLV_BIN"]
        self.dvc = os.environ["DVC_BIN"]
        self.log = os.path.join(self.out, "commands.log")
        self.rows = []

    def sh(self, argv, cwd, check=True, env=None):
        return B.run(argv, cwd, env or self.env, self.log, timeout=self.args.timeout, check=check)

    def report(self):
        lines = ["| scenario | data | step | time, median (min-max) | peak RSS | ratio |",
                 "|---|---|---|---|---|---|"]
        for r in self.rows:
            lines.append("| " + " | ".join(r) + " |")
        text = "\n".join(lines) + "\n"
        print(text)
        with open(os.path.join(self.out, "results.md"), "w") as f:
            f.write(text)
