"""CPython's side of the compatibility matrix (tests/compat.rs): one line per feature,
`NAME ok`, `NAME ERRNO` (the errno of the OSError that stopped it) or `NAME error TEXT`."""
import errno
import sys


FEATURES = []


def feature(name):
    def register(fn):
        FEATURES.append((name, fn))
        return fn
    return register


def run(name, fn):
    try:
        fn()
        print(name, "ok", flush=True)
    except OSError as e:
        print(name, errno.errorcode.get(e.errno, "error %s" % e), flush=True)
    except Exception as e:  # anything else is reported whole, never hidden
        text = " ".join(str(e).split())[:200]
        print(name, "error", type(e).__name__, text, flush=True)


@feature("threads")
def _():
    import threading
    out = []
    ts = [threading.Thread(target=out.append, args=(i,)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert sorted(out) == list(range(8))


@feature("asyncio")
def _():
    import asyncio

    async def main():
        await asyncio.sleep(0)
        proc = await asyncio.create_subprocess_exec("true")
        return await proc.wait()
    assert asyncio.run(main()) == 0


@feature("multiprocessing")
def _():
    import multiprocessing
    with multiprocessing.get_context("fork").Pool(2) as p:
        assert p.map(abs, [-1, -2, -3]) == [1, 2, 3]
    with multiprocessing.get_context("spawn").Pool(1) as p:
        assert p.map(abs, [-4]) == [4]


@feature("subprocess")
def _():
    import subprocess
    r = subprocess.run(["sh", "-c", "echo hi | tr a-z A-Z"], capture_output=True, check=True)
    assert r.stdout == b"HI\n"


@feature("sqlite3")
def _():
    import sqlite3
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        db = sqlite3.connect(d + "/t.db")
        db.execute("create table t(x)")
        db.executemany("insert into t values (?)", [(i,) for i in range(100)])
        db.commit()
        assert db.execute("select sum(x) from t").fetchone()[0] == 4950
        db.close()


@feature("ssl-context")
def _():
    import ssl
    ctx = ssl.create_default_context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert len(ctx.get_ca_certs()) >= 0


@feature("tempfile")
def _():
    import os
    import tempfile
    with tempfile.NamedTemporaryFile() as f:
        f.write(b"x" * 4096)
        f.flush()
        os.fsync(f.fileno())
        assert os.path.getsize(f.name) == 4096


@feature("loopback-tcp")
def _():
    import socket
    with socket.create_server(("127.0.0.1", 0)) as srv:
        port = srv.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as c:
            conn, _ = srv.accept()
            c.sendall(b"ping")
            assert conn.recv(4) == b"ping"
            conn.close()


# multiprocessing's `spawn` imports this file again in the child: only the parent runs.
if __name__ == "__main__":
    for name, fn in FEATURES:
        run(name, fn)
    sys.exit(0)
