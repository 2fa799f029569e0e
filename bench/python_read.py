"""mlv.read() of a large tracked file against reading the checked-out file from disk (issue 14's
target: within 1.5x when the object is cached), and the peak memory of mlv.open() streaming.

    python bench/python_read.py [SIZE_MB]    # with the mlv wheel installed (mlv on PATH)

Makes a scratch repository in a temporary directory; prints best and median of 7 runs.
"""

import os
import subprocess
import sys
import tempfile
import time

import mlv

size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 100


def best(f, n=7):
    t = []
    for _ in range(n):
        s = time.perf_counter()
        f()
        t.append(time.perf_counter() - s)
    t.sort()
    return t[0], t[len(t) // 2]


# peak RSS from /proc (VmHWM: this process's own; ru_maxrss would carry the parent's over exec)
STREAM = r"""
import mlv
n = 0
with mlv.open("big.bin") as f:
    while True:
        b = f.read(1 << 20)
        if not b:
            break
        n += len(b)
print(next(int(l.split()[1]) // 1024 for l in open("/proc/self/status") if l.startswith("VmHWM")))
"""

with tempfile.TemporaryDirectory() as d:
    env = dict(os.environ, GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1")
    subprocess.run(["git", "init", "-q"], cwd=d, check=True, env=env)
    subprocess.run(["mlv", "init", "-q"], cwd=d, check=True, env=env)
    with open(os.path.join(d, "big.bin"), "wb") as f:
        for _ in range(size_mb):
            f.write(os.urandom(1 << 20))
    subprocess.run(["mlv", "add", "-q", "big.bin"], cwd=d, check=True, env=env)
    os.chdir(d)

    def disk():
        with open("big.bin", "rb") as f:
            return f.read()

    def api():
        return mlv.read("big.bin")

    disk()
    d_best, d_med = best(disk)
    m_best, m_med = best(api)
    print(f"{size_mb} MB  disk read  best {d_best:.3f}s  median {d_med:.3f}s")
    print(f"{size_mb} MB  mlv.read   best {m_best:.3f}s  median {m_med:.3f}s  ratio {m_best / d_best:.2f} (median {m_med / d_med:.2f})")
    rss = subprocess.run([sys.executable, "-c", STREAM], check=True, capture_output=True, text=True).stdout.strip()
    print(f"{size_mb} MB  mlv.open streamed in 1 MiB reads: peak RSS {rss} MB")
