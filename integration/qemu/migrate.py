#!/usr/bin/env python3
"""One or more live migrations of the test guest between two QEMU processes on this machine.

Run through migrate.sh, which builds (or reuses) the patched QEMU and the guest and passes their
paths. For each run: start the destination (-S -incoming defer) and the source, both with guest
RAM in a file under /dev/shm; wait until the guest's workload runs; migrate over 127.0.0.1
through a relay that counts the bytes on the socket, with XBZRLE on and a bandwidth limit; wait
for the end; stop both QEMUs; compare the two RAM files byte for byte. Every QEMU process is
stopped by its own pid whatever happens. Any failure: a clear message on stderr and exit 1.
"""

import argparse
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

PAGE = 4096


class Failure(Exception):
    pass


def log(msg):
    print(f"migrate: {msg}", file=sys.stderr, flush=True)


def parse_size(text):
    m = re.fullmatch(r"(\d+)([KMG]?)i?B?", text.strip(), re.IGNORECASE)
    if not m:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size (e.g. 32M, 512K, 1G, 4096)")
    return int(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2).upper()]


# ---------------------------------------------------------------------------- QEMU processes

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    # PR_SET_PDEATHSIG: the QEMU gets SIGKILL if this script dies without cleaning up.
    _libc.prctl(1, signal.SIGKILL, 0, 0, 0)


class Qemu:
    def __init__(self, name, binary, args, rundir):
        self.name = name
        self.binary = binary
        self.qmp_path = os.path.join(rundir, f"{name}.qmp")
        self.stderr_path = os.path.join(rundir, f"{name}.stderr")
        self.serial_path = os.path.join(rundir, f"{name}-serial.log")
        cmd = [binary] + args + [
            "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
            "-serial", f"file:{self.serial_path}",
            "-display", "none", "-monitor", "none",
        ]
        with open(os.path.join(rundir, f"{name}.cmdline"), "w") as f:
            f.write(" ".join(cmd) + "\n")
        env = dict(os.environ, QEMU_FGBI_STATS="1")
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.stderr,
                                     stderr=self.stderr, env=env, preexec_fn=_die_with_parent)
        self.pid = self.proc.pid
        self.qmp = None
        log(f"{name}: started pid {self.pid}: {binary}")

    def check_alive(self):
        rc = self.proc.poll()
        if rc is not None:
            raise Failure(f"{self.name} QEMU (pid {self.pid}) exited with status {rc}: "
                          f"{self.stderr_tail()}")

    def stderr_tail(self):
        try:
            with open(self.stderr_path, "rb") as f:
                text = f.read().decode(errors="replace").strip()
            return text[-800:] or "(no stderr)"
        except OSError:
            return "(no stderr)"

    def connect(self, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            try:
                self.qmp = Qmp(self.qmp_path, self)
                return
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise Failure(f"{self.name}: no QMP socket after {timeout} s")
                time.sleep(0.05)

    def cmd(self, command, **args):
        return self.qmp.cmd(command, **args)

    def stop(self, timeout=20):
        """Stops this QEMU by its pid: QMP quit, then SIGTERM, then SIGKILL."""
        if self.proc.poll() is None and self.qmp is not None:
            try:
                self.qmp.cmd("quit", timeout=5)
            except Exception:
                pass
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"{self.name}: pid {self.pid} still running after quit: SIGTERM")
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                log(f"{self.name}: pid {self.pid}: SIGKILL")
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait()
        if self.qmp is not None:
            self.qmp.close()
        self.stderr.close()


class Qmp:
    def __init__(self, path, owner):
        self.owner = owner
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = b""
        greeting = self._read(10)
        if "QMP" not in greeting:
            raise Failure(f"{owner.name}: unexpected QMP greeting {greeting}")
        self.cmd("qmp_capabilities")

    def _read(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure(f"{self.owner.name}: QMP did not answer within {timeout} s")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise Failure(f"{self.owner.name}: QMP connection closed "
                              f"({self.owner.stderr_tail()})")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, command, timeout=30, **args):
        msg = {"execute": command}
        if args:
            msg["arguments"] = {k.replace("_", "-"): v for k, v in args.items()}
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._read(timeout)
            if "event" in reply:
                continue
            if "error" in reply:
                raise Failure(f"{self.owner.name}: QMP {command} failed: {reply['error'].get('desc')}")
            return reply.get("return")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------------------- byte-counting relay

class Relay:
    """127.0.0.1 TCP relay between the source and the destination: counts the bytes each way."""

    def __init__(self, dest_port, corrupt_every=None):
        self.dest_port = dest_port
        # self-test: flip the low bit of every corrupt_every-th byte sent to the destination
        self.corrupt_every = corrupt_every
        self.corrupted = 0
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.port = self.listener.getsockname()[1]
        self.to_dest = 0
        self.to_source = 0
        self.connections = 0
        self.error = None
        self.threads = []
        self.socks = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()

    def _accept(self):
        while True:
            try:
                src, _ = self.listener.accept()
            except OSError:
                return
            try:
                dst = socket.create_connection(("127.0.0.1", self.dest_port), timeout=10)
                dst.settimeout(None)
            except OSError as e:
                self.error = f"relay: cannot connect to the destination: {e}"
                src.close()
                continue
            self.connections += 1
            self.socks += [src, dst]
            for a, b, attr in ((src, dst, "to_dest"), (dst, src, "to_source")):
                t = threading.Thread(target=self._pump, args=(a, b, attr), daemon=True)
                t.start()
                self.threads.append(t)

    def _pump(self, a, b, attr):
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        try:
            while True:
                n = a.recv_into(buf)
                if n == 0:
                    break
                if attr == "to_dest" and self.corrupt_every:
                    done, k = self.to_dest, self.corrupt_every
                    for pos in range((done // k + 1) * k, done + n, k):
                        buf[pos - done] ^= 0x01
                        self.corrupted += 1
                b.sendall(view[:n])
                setattr(self, attr, getattr(self, attr) + n)
        except OSError:
            pass
        finally:
            try:
                b.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def close(self, timeout=10):
        self.listener.close()
        for t in self.threads:
            t.join(timeout)
        for s in self.socks:
            s.close()


# ---------------------------------------------------------------------------- one run

def wait_for_serial(q, pattern, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        q.check_alive()
        try:
            with open(q.serial_path, "rb") as f:
                if pattern in f.read():
                    return
        except FileNotFoundError:
            pass
        time.sleep(0.2)
    raise Failure(f"{q.name}: the guest did not print {pattern.decode()!r} within {timeout} s "
                  f"(serial log: {q.serial_path})")


def compare_files(a, b):
    """Returns (identical, differing pages, first differing page offsets, non-zero pages of a)."""
    if os.path.getsize(a) != os.path.getsize(b):
        return False, -1, [], 0
    diff, first, nonzero = 0, [], 0
    zero = bytes(PAGE)
    chunk = 1 << 22
    with open(a, "rb") as fa, open(b, "rb") as fb:
        off = 0
        while True:
            x, y = fa.read(chunk), fb.read(chunk)
            if not x and not y:
                break
            nonzero += sum(1 for p in range(0, len(x), PAGE) if x[p:p + PAGE] != zero)
            if x != y:
                for p in range(0, len(x), PAGE):
                    if x[p:p + PAGE] != y[p:p + PAGE]:
                        diff += 1
                        if len(first) < 8:
                            first.append(hex(off + p))
            off += len(x)
    return diff == 0, diff, first, nonzero


def fgbi_stats(stderr_text):
    m = None
    for m in re.finditer(r"fgbi-xbzrle: libfgbi (\S+) fgbi_xbzrle_encode calls=(\d+) encoded=(\d+)"
                         r" unchanged=(\d+) overflow=(\d+) encoded_bytes=(\d+)", stderr_text):
        pass
    if not m:
        return None
    keys = ("calls", "encoded", "unchanged", "overflow", "encoded_bytes")
    return dict(libfgbi_version=m.group(1), **{k: int(v) for k, v in zip(keys, m.groups()[1:])})


def one_run(a, run, rundir):
    os.makedirs(rundir, exist_ok=True)
    src_ram = os.path.join(rundir, "src.ram")
    dst_ram = os.path.join(rundir, "dst.ram")
    ram_mib = a.ram >> 20

    def args(ram_file):
        return [
            "-machine", "pc-i440fx-10.0,accel=tcg,memory-backend=m0",
            "-object", f"memory-backend-file,id=m0,size={ram_mib}M,mem-path={ram_file},share=on",
            "-m", f"{ram_mib}M", "-smp", "1", "-nic", "none", "-vga", "none",
            # Debian's firmware search path (its qemu-system-x86's -L help) on both sides
            "-L", "/usr/share/qemu", "-L", "/usr/share/seabios", "-L", "/usr/lib/ipxe/qemu",
            "-no-user-config", "-nodefaults",
            "-kernel", a.kernel, "-initrd", a.initrd,
            "-append", f"console=ttyS0 panic=-1 quiet fgbi.ws={a.workload_mib} "
                       f"fgbi.batch={a.batch} fgbi.pause={a.pause}",
        ]

    qemus = []
    relay = None
    try:
        dst = Qemu("dst", a.dest_binary, args(dst_ram) + ["-S", "-incoming", "defer"], rundir)
        qemus.append(dst)
        dst.connect()
        src = Qemu("src", a.source_binary, args(src_ram), rundir)
        qemus.append(src)
        src.connect()
        versions = {}
        for q in qemus:
            v = q.cmd("query-version")
            versions[q.name] = ("{major}.{minor}.{micro}".format(**v["qemu"]) +
                                (f" ({v['package'].strip()})" if v.get("package", "").strip() else ""))

        wait_for_serial(src, b"workload: started", a.boot_timeout)
        time.sleep(a.warmup)
        src.check_alive()

        for q in (src, dst):
            q.cmd("migrate-set-capabilities",
                  capabilities=[{"capability": "xbzrle", "state": True}])
        src.cmd("migrate-set-parameters", xbzrle_cache_size=a.cache, max_bandwidth=a.bandwidth,
                downtime_limit=a.downtime_limit)

        # the destination listens on a port the kernel picks (no race with other programs)
        dst.cmd("migrate-incoming", uri="tcp:127.0.0.1:0")
        addrs = dst.cmd("query-migrate").get("socket-address") or []
        ports = [int(x["port"]) for x in addrs if x.get("type") == "inet" and x.get("port")]
        if not ports:
            raise Failure(f"dst: query-migrate gives no listening port ({addrs})")
        dport = ports[0]
        relay = Relay(dport, a.self_test_corrupt_every)
        log(f"run {run}: migrating {ram_mib} MiB ({a.mode}), max-bandwidth {a.bandwidth} B/s, "
            f"via relay 127.0.0.1:{relay.port} -> 127.0.0.1:{dport}")
        if a.stopped_guest:
            src.cmd("stop")  # self-test: one pass, no page is sent twice
        t0 = time.monotonic()
        src.cmd("migrate", uri=f"tcp:127.0.0.1:{relay.port}")

        info = None
        while True:
            src.check_alive()
            dst.check_alive()
            if relay.error:
                raise Failure(relay.error)
            info = src.cmd("query-migrate")
            status = info.get("status")
            if status == "completed":
                break
            if status in ("failed", "cancelled"):
                raise Failure(f"run {run}: the migration {status}: {info.get('error-desc', '')} "
                              f"(dst: {dst.stderr_tail()})")
            if time.monotonic() - t0 > a.timeout:
                ram = info.get("ram", {})
                try:
                    src.cmd("migrate_cancel")
                except Failure:
                    pass
                raise Failure(f"run {run}: the migration did not complete within {a.timeout} s "
                              f"(did not converge: {ram.get('dirty-sync-count')} rounds, "
                              f"{ram.get('remaining')} bytes remaining, dirty rate "
                              f"{ram.get('dirty-pages-rate')} pages/s)")
            time.sleep(0.1)
        wall_ms = int((time.monotonic() - t0) * 1000)

        # the destination has loaded everything once its incoming side says completed
        deadline = time.monotonic() + 30
        while True:
            dst.check_alive()
            dinfo = dst.cmd("query-migrate")
            if dinfo.get("status") == "completed":
                break
            if dinfo.get("status") == "failed":
                raise Failure(f"run {run}: the destination failed to load: {dst.stderr_tail()}")
            if time.monotonic() > deadline:
                raise Failure(f"run {run}: the destination did not finish loading within 30 s "
                              f"(status {dinfo.get('status')})")
            time.sleep(0.1)
        src_state = src.cmd("query-status")["status"]
        dst_state = dst.cmd("query-status")["status"]
        if src_state != "postmigrate" and not (a.stopped_guest and src_state == "paused"):
            raise Failure(f"run {run}: the source is '{src_state}' after the migration, not postmigrate")

        # The patched source prints libfgbi's counters when it cleans up the migration, in a
        # bottom half that runs after the status is already 'completed': a quit before it would
        # lose them, so wait for the line (or for a stock source's QEMU_FGBI_STATS silence).
        if a.mode == "fgbi-xbzrle":
            deadline = time.monotonic() + 20
            while True:
                with open(src.stderr_path, errors="replace") as f:
                    if fgbi_stats(f.read()):
                        break
                src.check_alive()
                if time.monotonic() > deadline:
                    raise Failure(f"run {run}: the patched source did not print its "
                                  f"fgbi_xbzrle_encode counter within 20 s of completing")
                time.sleep(0.05)

        # stop both, then compare
        for q in reversed(qemus):
            q.stop()
        relay.close()
        time.sleep(0.2)
        identical, ndiff, first, nonzero = compare_files(src_ram, dst_ram)
        with open(src.stderr_path, errors="replace") as f:
            stats = fgbi_stats(f.read())

        ram = info.get("ram", {})
        xb = info.get("xbzrle-cache", {})
        result = {
            "mode": a.mode,
            "run": run,
            "verified": identical,
            "ram_bytes": os.path.getsize(src_ram),
            "ram_nonzero_pages": nonzero,
            "wire_bytes": relay.to_dest,
            "wire_bytes_back": relay.to_source,
            "qemu_transferred": ram.get("transferred"),
            "total_ms": info.get("total-time"),
            "downtime_ms": info.get("downtime"),
            "setup_ms": info.get("setup-time"),
            "wall_ms": wall_ms,
            "rounds": ram.get("dirty-sync-count"),
            "normal_pages": ram.get("normal"),
            "zero_pages": ram.get("duplicate"),
            "xbzrle_pages": xb.get("pages"),
            "xbzrle_bytes": xb.get("bytes"),
            "xbzrle_cache_miss": xb.get("cache-miss"),
            "xbzrle_overflow": xb.get("overflow"),
            # page bytes / XBZRLE bytes over the whole migration (QEMU's formula; its own
            # encoding-rate is that of the last dirty-sync period only, 0 if it had no XBZRLE page)
            "encoding_rate": (round(xb["pages"] * PAGE / xb["bytes"], 3)
                              if xb.get("pages") and xb.get("bytes") else 0),
            "encoding_rate_last_period": xb.get("encoding-rate"),
            "xbzrle_cache_bytes": a.cache,
            "max_bandwidth": a.bandwidth,
            "fgbi_encode": stats,
            "source_binary": a.source_binary,
            "dest_binary": a.dest_binary,
            "source_version": versions["src"],
            "dest_version": versions["dst"],
            "dest_state": dst_state,
            "src_ram": src_ram,
            "dst_ram": dst_ram,
        }
        if a.self_test_corrupt_every:
            result["self_test_corrupted_bytes"] = relay.corrupted
        if not identical:
            result["differing_pages"] = ndiff
            result["first_differing_offsets"] = first
        return result
    finally:
        for q in reversed(qemus):
            if q.proc.poll() is None:
                q.stop(timeout=5)
        if relay:
            relay.close(timeout=2)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--mode", required=True, choices=["stock", "fgbi-xbzrle"])
    p.add_argument("--source-binary", required=True)
    p.add_argument("--dest-binary", required=True)
    p.add_argument("--kernel", required=True)
    p.add_argument("--initrd", required=True)
    p.add_argument("--json", action="store_true", help="one JSON object per run on stdout")
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--bandwidth", type=parse_size, default=parse_size("64M"),
                   help="QEMU max-bandwidth, bytes/s with K/M/G suffixes (default 64M)")
    p.add_argument("--ram", type=parse_size, default=parse_size("128M"), help="guest RAM (128M)")
    p.add_argument("--workload-mib", type=int, default=48, help="workload data in MiB (48)")
    p.add_argument("--batch", type=int, default=2000, help="workload transactions per batch")
    p.add_argument("--pause", type=int, default=2000, help="workload pause per batch, us")
    p.add_argument("--cache", type=parse_size, default=None,
                   help="xbzrle-cache-size (default: half the guest RAM)")
    p.add_argument("--downtime-limit", type=int, default=300, help="ms (300, QEMU's default)")
    p.add_argument("--timeout", type=int, default=300, help="s per migration (300)")
    p.add_argument("--boot-timeout", type=int, default=180, help="s until the workload runs")
    p.add_argument("--warmup", type=float, default=3.0, help="s of workload before migrating")
    p.add_argument("--self-test-corrupt-every", type=parse_size, default=None, metavar="N",
                   help="harness self-test: the relay flips one bit of every N-th byte sent to the "
                        "destination (the run must then fail: stream error or RAM difference)")
    p.add_argument("--stopped-guest", action="store_true",
                   help="self-test: stop the guest before migrating (one pass: nothing re-sent)")
    p.add_argument("--outdir", default="/dev/shm/fgbi-qemu", help="RAM files and logs")
    a = p.parse_args()
    if a.cache is None:
        a.cache = a.ram // 2
    if a.runs < 1:
        p.error("--runs must be at least 1")

    # RAM files of an earlier invocation of this mode are replaced; those of this one stay.
    base = os.path.join(a.outdir, a.mode)
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base)
    need = 2 * a.ram * a.runs
    free = shutil.disk_usage(base).free
    if free < need + (256 << 20):
        raise Failure(f"{base}: {free >> 20} MiB free, {need >> 20} MiB needed for the RAM files")

    def on_signal(signum, _frame):
        raise Failure(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    failed = False
    for run in range(1, a.runs + 1):
        rundir = os.path.join(base, f"run{run}")
        try:
            r = one_run(a, run, rundir)
        except Failure:
            log(f"run {run}: QEMU logs, command lines, serial logs and RAM files: {rundir}")
            raise
        problems = []
        if not r["verified"]:
            problems.append(f"the RAM files differ on {r.get('differing_pages')} pages "
                            f"(first at {r.get('first_differing_offsets')})")
        if a.stopped_guest:
            pass  # one pass of a stopped guest: no XBZRLE page is expected
        elif not r["xbzrle_pages"]:
            problems.append("no page was sent as XBZRLE (the encoder was not exercised)")
        if a.mode == "fgbi-xbzrle" and not a.stopped_guest:
            s = r["fgbi_encode"]
            if not s or s["calls"] == 0:
                problems.append("the source did not report fgbi_xbzrle_encode calls: "
                                "libfgbi's encoder was not used")
            elif s["calls"] != r["xbzrle_pages"]:
                problems.append(f"fgbi_xbzrle_encode calls ({s['calls']}) != QEMU's XBZRLE "
                                f"pages ({r['xbzrle_pages']})")
        elif a.mode == "stock" and r["fgbi_encode"] is not None:
            problems.append("the stock source reported libfgbi calls")
        r["verified"] = r["verified"] and not problems
        if a.json:
            print(json.dumps(r), flush=True)
        log(f"run {run}: {'verified' if r['verified'] else 'FAILED'}: total {r['total_ms']} ms, "
            f"downtime {r['downtime_ms']} ms, {r['rounds']} rounds, wire {r['wire_bytes']} B, "
            f"xbzrle pages {r['xbzrle_pages']} (cache miss {r['xbzrle_cache_miss']}, "
            f"overflow {r['xbzrle_overflow']}), encoding rate {r['encoding_rate']}"
            + (f", fgbi_xbzrle_encode calls {r['fgbi_encode']['calls']}"
               if r["fgbi_encode"] else ""))
        if problems:
            for pr in problems:
                log(f"run {run}: {pr}")
            log(f"run {run}: QEMU logs, command lines, serial logs and RAM files: {rundir}")
            failed = True
            break
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as e:
        log(f"error: {e}")
        sys.exit(1)
