#!/usr/bin/env python3
"""One or more live migrations of the test guest between two QEMU processes on this machine.

Run through migrate.sh, which builds (or reuses) the patched QEMU and the guest and passes their
paths. For each run: start the destination (-S -incoming defer) and the source, both with guest
RAM in a file under /dev/shm; wait until the guest's workload runs; migrate over 127.0.0.1
through a relay that counts the bytes on the socket, with XBZRLE or multifd on and a bandwidth
limit; wait for the end; stop both QEMUs; compare the two RAM files byte for byte. With
--corrupt, a first migration through a relay that damages one multifd packet must fail first;
with --unaffordable-cache, a first migration with a cache budget libfgbi's encoders cannot
allocate. Every QEMU process is stopped by its own pid whatever happens. Any failure: a clear
message on stderr and exit 1.
"""

import argparse
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import struct
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
    def __init__(self, name, binary, args, rundir, env=None):
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
        env = dict(os.environ, QEMU_FGBI_STATS="1", **(env or {}))
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
        # an event may come before the greeting (seen once: RESUME, on a fresh machine's first
        # run); the greeting is what says the monitor is ready for qmp_capabilities
        while "event" in greeting:
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
            except OSError as e:  # the process died under us (connection reset)
                raise Failure(f"{self.owner.name}: QMP connection lost: {e} "
                              f"({self.owner.stderr_tail()})") from e
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
        try:
            self.sock.sendall(json.dumps(msg).encode() + b"\n")
        except OSError as e:
            raise Failure(f"{self.owner.name}: QMP connection lost: {e} "
                          f"({self.owner.stderr_tail()})") from e
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

    def __init__(self, dest_port, corrupt_every=None, corrupt_multifd_after=None):
        self.dest_port = dest_port
        # self-test: flip the low bit of every corrupt_every-th byte sent to the destination
        self.corrupt_every = corrupt_every
        self.corrupted = 0
        # --corrupt: flip bytes in the payload of one multifd packet (MultifdCorrupter)
        self.corrupt_multifd_after = corrupt_multifd_after
        self.multifd_corrupted = None  # {"channel_connection", "stream_offset", "payload_len", ...}
        self.lock = threading.Lock()
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
        corrupter = None
        if attr == "to_dest" and self.corrupt_multifd_after is not None:
            corrupter = MultifdCorrupter(self, self.connections, self.corrupt_multifd_after)
        try:
            while True:
                n = a.recv_into(buf)
                if n == 0:
                    break
                if corrupter:
                    corrupter.feed(buf, n)
                if attr == "to_dest" and self.corrupt_every:
                    done, k = self.to_dest, self.corrupt_every
                    for pos in range((done // k + 1) * k, done + n, k):
                        buf[pos - done] ^= 0x01
                        self.corrupted += 1
                b.sendall(view[:n])
                setattr(self, attr, getattr(self, attr) + n)
        except OSError:
            # The peer is gone (e.g. a destination that refused the stream and exited): reset
            # the other side too, as a direct TCP connection would, so that the sender's writes
            # fail instead of filling the relay's socket forever.
            try:
                a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                a.shutdown(socket.SHUT_RDWR)
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


# multifd's wire format (migration/multifd.[ch] of QEMU 10.0): a 64-byte MultiFDInit_t, then
# packets of a fixed length, MultiFDPacket_t (320 bytes) and 128 page offsets (8 bytes each;
# 4 KiB pages, 512 KiB packets), each followed by next_packet_size bytes of payload.
MULTIFD_MAGIC = b"\x11\x22\x33\x44"
MULTIFD_INIT_LEN = 64
MULTIFD_PACKET_LEN = 320 + 8 * (512 * 1024 // PAGE)
CORRUPT_FLIPS = 8


class MultifdCorrupter:
    """--corrupt: follows one relayed connection (source to destination); if it is a multifd
    channel, flips CORRUPT_FLIPS bytes (XOR 0x5a) spread over the payload of the first packet
    whose payload starts after `after` bytes of the channel and is at least 1 KiB long. Only one
    packet of one channel is damaged per relay: the payload, not the headers, so that it is the
    destination's decoder that must notice."""

    def __init__(self, relay, conn_index, after):
        self.relay = relay
        self.conn = conn_index
        self.after = after
        self.pos = 0            # bytes of the stream seen
        self.kind = None        # "multifd" or "other", from the first 4 bytes
        self.head = bytearray()
        self.next_packet_at = MULTIFD_INIT_LEN  # stream offset of the next packet header
        self.payload = None     # (start, length) of the current packet's payload
        self.targets = []       # stream offsets still to flip

    def feed(self, buf, n):
        start = self.pos
        self.pos += n
        i = 0
        if self.kind is None:
            take = min(n, 4 - len(self.head))
            self.head += buf[:take]
            i = take
            if len(self.head) < 4:
                return
            self.kind = "multifd" if bytes(self.head) == MULTIFD_MAGIC else "other"
            self.head = bytearray()
        if self.kind != "multifd":
            return
        while i < n:
            o = start + i
            if o < self.next_packet_at:  # init message or payload: skip
                i = min(n, self.next_packet_at - start)
                continue
            hdr_end = self.next_packet_at + MULTIFD_PACKET_LEN
            end = min(start + n, hdr_end)
            lo, hi = o - self.next_packet_at, end - self.next_packet_at
            if lo < 24:  # next_packet_size is at bytes 20..23 (big endian)
                self.head += buf[i:i + min(hi, 24) - lo]
            i = end - start
            if end == hdr_end:
                size = int.from_bytes(bytes(self.head[20:24]), "big")
                self.head = bytearray()
                self.next_packet_at = hdr_end + size
                self._payload(hdr_end, size)
        for t in list(self.targets):
            if start <= t < start + n:
                buf[t - start] ^= 0x5A
                self.targets.remove(t)
                with self.relay.lock:
                    self.relay.multifd_corrupted["flipped"] += 1

    def _payload(self, pstart, size):
        if size < 1024 or pstart < self.after:
            return
        with self.relay.lock:
            if self.relay.multifd_corrupted is not None:
                return
            self.relay.multifd_corrupted = {
                "connection": self.conn, "payload_offset": pstart, "payload_len": size,
                "flipped": 0}
        self.targets = [pstart + size * k // (CORRUPT_FLIPS + 1)
                        for k in range(1, CORRUPT_FLIPS + 1)]


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
    """Returns (identical, offsets of the differing pages, non-zero pages of a); offsets None when
    the sizes differ."""
    if os.path.getsize(a) != os.path.getsize(b):
        return False, None, 0
    diff, nonzero = [], 0
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
                        diff.append(off + p)
            off += len(x)
    return not diff, diff, nonzero


def qemu_env(a, rundir):
    """Environment for a QEMU of this run: with --trace, QEMU_FGBI_TRACE (multifd-fgbi.c)."""
    return {"QEMU_FGBI_TRACE": os.path.join(rundir, "trace")} if a.trace else {}


def trace_hash(page):
    """multifd-fgbi.c's trace hash of a page: FNV-1a over little-endian 8-byte words, each step
    followed by h ^= h >> 29."""
    h = 0xcbf29ce484222325
    for (v,) in struct.iter_unpack("<Q", page):
        h = ((h ^ v) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 29
    return h


def read_trace(trace_dir, side):
    """The last event of each page in the trace of one side: address -> hash (None for a page
    written or noted as zeros), and the set of pages seen on more than one channel."""
    last, channel, twice = {}, {}, set()
    for name in sorted(os.listdir(trace_dir)):
        m = re.fullmatch(rf"{side}\.(\d+)\.log", name)
        if not m:
            continue
        ch = int(m.group(1))
        with open(os.path.join(trace_dir, name)) as f:
            for line in f:
                t = line.split()
                # src: S epoch addr hash | Z epoch addr; dst: D addr hash | Z addr
                if side == "src" and len(t) == 4 and t[0] == "S":
                    addr, h = int(t[2], 16), int(t[3], 16)
                elif side == "src" and len(t) == 3 and t[0] == "Z":
                    addr, h = int(t[2], 16), None
                elif side == "dst" and len(t) == 3 and t[0] == "D":
                    addr, h = int(t[1], 16), int(t[2], 16)
                elif side == "dst" and len(t) == 2 and t[0] == "Z":
                    addr, h = int(t[1], 16), None
                else:
                    continue  # a line cut short by the process's end
                if channel.setdefault(addr, ch) != ch:
                    twice.add(addr)
                last[addr] = h
    return last, twice


def trace_report(trace_dir, src_ram, dst_ram, differing):
    """What the QEMU_FGBI_TRACE logs say: every page whose last contents as applied differ from
    its last contents as given to the encoder (a libfgbi fault), and for each page whose RAM
    files differ, why (RAM addresses are file offsets: the guest has one RAMBlock at 0)."""
    src, src_twice = read_trace(trace_dir, "src")
    dst, dst_twice = read_trace(trace_dir, "dst")
    zero = trace_hash(bytes(PAGE))
    def h(v):
        return zero if v is None else v
    not_as_sent = sorted(addr for addr, v in src.items() if addr in dst and h(dst[addr]) != h(v))
    not_as_sent_set = set(not_as_sent)
    never_applied = sorted(addr for addr in src if addr not in dst)
    why = {"stored_to_after_last_sending": [], "applied_not_as_sent": [], "never_sent": [],
           "changed_on_destination_after_applying": [], "unexplained": []}
    with open(src_ram, "rb") as fs, open(dst_ram, "rb") as fd:
        for off in differing or []:
            fs.seek(off)
            fd.seek(off)
            final_src, final_dst = trace_hash(fs.read(PAGE)), trace_hash(fd.read(PAGE))
            if off not in src:
                why["never_sent"].append(off)
            elif off in not_as_sent_set or off not in dst:
                why["applied_not_as_sent"].append(off)
            elif final_dst != h(dst[off]):
                why["changed_on_destination_after_applying"].append(off)
            elif final_src != h(src[off]):
                why["stored_to_after_last_sending"].append(off)
            else:
                # every hash agrees, yet the pages differ: a hash collision or a torn log
                why["unexplained"].append(off)
    return {
        "pages_sent": len(src),
        "pages_applied": len(dst),
        "applied_not_as_sent": len(not_as_sent),
        "applied_not_as_sent_first": [hex(x) for x in not_as_sent[:8]],
        "sent_never_applied": len(never_applied),
        "on_two_channels": len(src_twice | dst_twice),
        "differing": {k: len(v) for k, v in why.items()},
        "differing_first": {k: [hex(x) for x in v[:8]] for k, v in why.items() if v},
    }


def fgbi_stats(stderr_text):
    m = None
    for m in re.finditer(r"fgbi-xbzrle: libfgbi (\S+) encoder=(\S+) calls=(\d+) encoded=(\d+)"
                         r" unchanged=(\d+) overflow=(\d+) encoded_bytes=(\d+) checked=(\d+)"
                         r" mismatches=(\d+)", stderr_text):
        pass
    if not m:
        return None
    keys = ("calls", "encoded", "unchanged", "overflow", "encoded_bytes", "checked", "mismatches")
    return dict(libfgbi_version=m.group(1), encoder=m.group(2),
                **{k: int(v) for k, v in zip(keys, m.groups()[2:])})


MULTIFD_MODES = {"multifd-none": "none", "multifd-zstd": "zstd", "multifd-fgbi": "fgbi"}
CLK_TCK = os.sysconf("SC_CLK_TCK")


class NotConverged(Failure):
    def __init__(self, msg, info):
        super().__init__(msg)
        self.info = info


def thread_ticks(pid):
    """{tid: (name, utime + stime in clock ticks)} of the threads of process pid."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                text = f.read()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        out[int(tid)] = (name, int(fields[11]) + int(fields[12]))
    return out


class CpuSampler:
    """CPU time of a QEMU's migration threads. QEMU ends them when the migration ends, so their
    /proc entries are read at every poll (0.1 s) and the last reading of each thread is kept:
    the figures can miss up to one poll interval of a thread's last CPU time."""

    def __init__(self, q):
        self.q = q
        self.start = thread_ticks(q.pid)
        self.last = {}

    def sample(self):
        self.last.update(thread_ticks(self.q.pid))

    def seconds(self, pred):
        total = 0
        for tid, (name, ticks) in self.last.items():
            if pred(tid, name):
                total += ticks - self.start.get(tid, (name, 0))[1]
        return round(total / CLK_TCK, 2)


def fgbi_multifd_stats(text, side):
    """Per channel counters the patched QEMU prints with QEMU_FGBI_STATS (multifd-fgbi.c)."""
    chans = {}
    for m in re.finditer(rf"multifd-fgbi: {side} channel (\d+): (.*)", text):
        chans[int(m.group(1))] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return chans


def qemu_args(a, ram_file):
    ram_mib = a.ram >> 20
    return [
        # thread names (mig/src/send_0, ...) for the CPU time of the migration threads
        "-name", "fgbi-guest,debug-threads=on",
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


def set_capabilities(a, q):
    if a.mode in MULTIFD_MODES:
        q.cmd("migrate-set-capabilities", capabilities=[{"capability": "multifd", "state": True}])
        q.cmd("migrate-set-parameters", multifd_channels=a.channels,
              multifd_compression=MULTIFD_MODES[a.mode])
        if a.zero_page_detection:
            q.cmd("migrate-set-parameters", zero_page_detection=a.zero_page_detection)
    else:
        q.cmd("migrate-set-capabilities", capabilities=[{"capability": "xbzrle", "state": True}])


def start_dest(a, name, ram_file, rundir):
    dst = Qemu(name, a.dest_binary, qemu_args(a, ram_file) + ["-S", "-incoming", "defer"], rundir,
               qemu_env(a, rundir))
    try:
        dst.connect()
        set_capabilities(a, dst)
        # the destination listens on a port the kernel picks (no race with other programs)
        dst.cmd("migrate-incoming", uri="tcp:127.0.0.1:0")
        addrs = dst.cmd("query-migrate").get("socket-address") or []
        ports = [int(x["port"]) for x in addrs if x.get("type") == "inet" and x.get("port")]
        if not ports:
            raise Failure(f"{name}: query-migrate gives no listening port ({addrs})")
        dst.port = ports[0]
    except Exception:
        dst.stop(timeout=5)
        raise
    return dst


def migrate_once(a, run, src, dst, relay, dest_may_die=False):
    """Starts a migration from src to dst through relay and polls it to its end. Returns
    (final query-migrate of the source, wall ms, source sampler, destination sampler).
    Raises NotConverged at the time limit (the migration is cancelled)."""
    src_cpu, dst_cpu = CpuSampler(src), CpuSampler(dst)
    t0 = time.monotonic()
    deadline = t0 + 30
    while True:  # a source whose previous migration failed may still be cleaning it up
        try:
            src.cmd("migrate", uri=f"tcp:127.0.0.1:{relay.port}")
            break
        except Failure as e:
            if "in progress" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    while True:
        src.check_alive()
        src_cpu.sample()
        if dst.proc.poll() is None:
            dst_cpu.sample()
        if relay.error:
            raise Failure(relay.error)
        info = src.cmd("query-migrate")
        status = info.get("status")
        if status in ("completed", "failed", "cancelled"):
            break
        if not dest_may_die:
            dst.check_alive()
        if time.monotonic() - t0 > a.timeout:
            ram = info.get("ram", {})
            try:
                src.cmd("migrate_cancel")
            except Failure:
                pass
            raise NotConverged(
                f"run {run}: the migration did not complete within {a.timeout} s "
                f"(did not converge: {ram.get('dirty-sync-count')} rounds, "
                f"{ram.get('remaining')} bytes remaining, dirty rate "
                f"{ram.get('dirty-pages-rate')} pages/s)", info)
        time.sleep(0.1)
    wall_ms = int((time.monotonic() - t0) * 1000)
    # the destination's receive threads end when it has loaded everything
    if status == "completed":
        deadline = time.monotonic() + 30
        while True:
            dst.check_alive()
            dst_cpu.sample()
            dinfo = dst.cmd("query-migrate")
            if dinfo.get("status") == "completed":
                break
            if dinfo.get("status") == "failed":
                raise Failure(f"run {run}: the destination failed to load: {dst.stderr_tail()}")
            if time.monotonic() > deadline:
                raise Failure(f"run {run}: the destination did not finish loading within 30 s "
                              f"(status {dinfo.get('status')})")
            time.sleep(0.1)
    return info, wall_ms, src_cpu, dst_cpu


def wait_stderr(q, parse, enough, what, offset=0, timeout=20):
    """Waits until parse(stderr text from offset) satisfies enough(); returns the parse."""
    deadline = time.monotonic() + timeout
    while True:
        with open(q.stderr_path, errors="replace") as f:
            f.seek(offset)
            got = parse(f.read())
        if enough(got):
            return got
        if q.proc.poll() is not None or time.monotonic() > deadline:
            raise Failure(f"{q.name}: did not print {what} within {timeout} s")
        time.sleep(0.05)


def one_run(a, run, rundir):
    os.makedirs(rundir, exist_ok=True)
    if a.trace:
        shutil.rmtree(os.path.join(rundir, "trace"), ignore_errors=True)
        os.makedirs(os.path.join(rundir, "trace"))
    src_ram = os.path.join(rundir, "src.ram")
    dst_ram = os.path.join(rundir, "dst.ram")
    ram_mib = a.ram >> 20
    multifd = a.mode in MULTIFD_MODES

    qemus = []
    relays = []
    corrupt = unaffordable = None
    fail_first = a.corrupt is not None or a.unaffordable_cache is not None
    try:
        dst = start_dest(a, "dst", os.path.join(rundir, "dst-failed.ram") if fail_first
                         else dst_ram, rundir)
        qemus.append(dst)
        src = Qemu("src", a.source_binary, qemu_args(a, src_ram), rundir, qemu_env(a, rundir))
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

        set_capabilities(a, src)
        src.cmd("migrate-set-parameters", xbzrle_cache_size=a.cache, max_bandwidth=a.bandwidth,
                downtime_limit=a.downtime_limit)
        if a.stopped_guest:
            src.cmd("stop")  # self-test: one pass, no page is sent twice

        if fail_first:
            # 1. a migration that must fail, with the source guest still running: through a
            #    relay that damages one multifd packet's payload (--corrupt), or with a cache
            #    budget the encoders cannot allocate (--unaffordable-cache)
            if a.corrupt is not None:
                relay = Relay(dst.port, corrupt_multifd_after=a.corrupt)
                what = "--corrupt"
                log(f"run {run}: {what}: migrating through relay 127.0.0.1:{relay.port} that "
                    f"flips {CORRUPT_FLIPS} payload bytes of a multifd packet after {a.corrupt} B")
            else:
                relay = Relay(dst.port)
                what = "--unaffordable-cache"
                src.cmd("migrate-set-parameters", xbzrle_cache_size=a.unaffordable_cache)
                log(f"run {run}: {what}: migrating with xbzrle-cache-size "
                    f"{a.unaffordable_cache} B")
            relays.append(relay)
            info, wall_ms, _, _ = migrate_once(a, run, src, dst, relay, dest_may_die=True)
            deadline = time.monotonic() + 30
            while dst.proc.poll() is None and time.monotonic() < deadline:
                try:
                    dinfo = dst.cmd("query-migrate")
                except Failure as e:
                    # it may exit between the poll and the command (a failed load ends it)
                    try:
                        dst.proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        raise Failure(f"{e} (and the process still runs)") from e
                    break
                if dinfo.get("status") in ("failed", "completed"):
                    break
                time.sleep(0.1)
            failed = {
                "status": info.get("status"),
                "error_desc": info.get("error-desc"),
                "dest_exit_status": dst.proc.poll(),
                "dest_stderr": dst.stderr_tail(),
                "wall_ms": wall_ms,
                "source_state_after": src.cmd("query-status")["status"],
            }
            if a.corrupt is not None:
                failed["relay"] = relay.multifd_corrupted
                corrupt = failed
            else:
                failed["cache_bytes"] = a.unaffordable_cache
                unaffordable = failed
            log(f"run {run}: {what}: migration {failed['status']}, source "
                f"'{failed['source_state_after']}'"
                + (f", relay {failed['relay']}" if "relay" in failed else "")
                + f", source error: {failed['error_desc']}; destination: {failed['dest_stderr']}")
            if failed["status"] != "failed":
                raise Failure(f"run {run}: {what}: the migration ended "
                              f"'{failed['status']}', not 'failed'")
            if failed["source_state_after"] != "running":
                raise Failure(f"run {run}: {what}: the source is "
                              f"'{failed['source_state_after']}' after the failed migration")
            if unaffordable is not None:
                desc = failed["error_desc"] or ""
                if "fgbi_encoder_new" not in desc or "out of memory" not in desc:
                    raise Failure(f"run {run}: {what}: the error does not give libfgbi's "
                                  f"reason (fgbi_encoder_new ... out of memory): {desc!r}")
                src.cmd("migrate-set-parameters", xbzrle_cache_size=a.cache)
            dst.stop(timeout=5)
            relay.close(timeout=2)
            # 2. a fresh destination, a clean relay: the same source migrates again
            dst = start_dest(a, "dst2", dst_ram, rundir)
            qemus.append(dst)
            src.check_alive()

        relay = Relay(dst.port, a.self_test_corrupt_every)
        relays.append(relay)
        log(f"run {run}: migrating {ram_mib} MiB ({a.mode}), max-bandwidth {a.bandwidth} B/s"
            + (f", {a.channels} multifd channels" if multifd else "")
            + f", via relay 127.0.0.1:{relay.port} -> 127.0.0.1:{dst.port}")
        with open(src.stderr_path, "rb") as f:
            src_err_offset = len(f.read())
        converged = True
        try:
            info, wall_ms, src_cpu, dst_cpu = migrate_once(a, run, src, dst, relay)
        except NotConverged as e:
            log(str(e))
            converged = False
            info, wall_ms, src_cpu, dst_cpu = e.info, a.timeout * 1000, None, None
        if converged and info.get("status") != "completed":
            raise Failure(f"run {run}: the migration {info.get('status')}: "
                          f"{info.get('error-desc', '')} (dst: {dst.stderr_tail()})")

        stats = None
        fgbi_send = fgbi_recv = fgbi_conf = None
        if converged:
            src_state = src.cmd("query-status")["status"]
            dst_state = dst.cmd("query-status")["status"]
            if src_state != "postmigrate" and not (a.stopped_guest and src_state == "paused"):
                raise Failure(f"run {run}: the source is '{src_state}' after the migration, "
                              f"not postmigrate")
            # The patched QEMUs print libfgbi's counters when they clean up the migration, in
            # a bottom half that runs after the status is already 'completed': a quit before
            # it would lose them, so wait for the lines.
            if a.mode == "fgbi-xbzrle":
                stats = wait_stderr(src, fgbi_stats, bool, "its fgbi_xbzrle_encode counter",
                                    src_err_offset)
            elif a.mode == "multifd-fgbi":
                fgbi_send = wait_stderr(src, lambda t: fgbi_multifd_stats(t, "send"),
                                        lambda c: len(c) == a.channels,
                                        "its multifd-fgbi send counters", src_err_offset)
                fgbi_recv = wait_stderr(dst, lambda t: fgbi_multifd_stats(t, "recv"),
                                        lambda c: len(c) == a.channels,
                                        "its multifd-fgbi recv counters")
                with open(src.stderr_path, errors="replace") as f:
                    f.seek(src_err_offset)
                    m = re.search(r"multifd-fgbi: channel 0: libfgbi (\S+) link_rate=(\d+) "
                                  r"cache_bytes=(\d+)", f.read())
                if m:
                    fgbi_conf = {"libfgbi_version": m.group(1),
                                 "link_rate_per_channel": int(m.group(2)),
                                 "cache_bytes_per_channel": int(m.group(3))}
        else:
            dst_state = None

        # stop both, then compare
        for q in reversed(qemus):
            q.stop()
        for r in relays:
            r.close()
        time.sleep(0.2)
        identical, differing, nonzero = (compare_files(src_ram, dst_ram) if converged
                                         else (False, None, None))
        trace = (trace_report(os.path.join(rundir, "trace"), src_ram, dst_ram, differing)
                 if a.trace and converged else None)

        ram = info.get("ram", {})
        xb = info.get("xbzrle-cache", {})
        result = {
            "mode": a.mode,
            "run": run,
            "verified": identical,
            "converged": converged,
            "channels": a.channels if multifd else None,
            "ram_bytes": os.path.getsize(src_ram),
            "ram_nonzero_pages": nonzero,
            "wire_bytes": relay.to_dest,
            "wire_bytes_back": relay.to_source,
            "qemu_transferred": ram.get("transferred"),
            "qemu_multifd_bytes": ram.get("multifd-bytes"),
            "total_ms": info.get("total-time") if converged else wall_ms,
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
            # CPU seconds of the migration threads (sampled every 0.1 s, see CpuSampler)
            "cpu_src_main_s": src_cpu.seconds(lambda t, n: n == "mig/src/main") if src_cpu else None,
            "cpu_src_send_s": (src_cpu.seconds(lambda t, n: n.startswith("mig/src/send"))
                               if src_cpu else None),
            "cpu_dst_recv_s": (dst_cpu.seconds(lambda t, n: n.startswith("mig/dst/recv"))
                               if dst_cpu else None),
            "cpu_dst_main_s": (dst_cpu.seconds(lambda t, n: t == dst.pid) if dst_cpu else None),
            "fgbi_encode": stats,
            "fgbi_multifd_send": fgbi_send,
            "fgbi_multifd_recv": fgbi_recv,
            # libfgbi's configuration per channel (link rate 0: unknown, no adaptive gates)
            "fgbi_multifd_config": fgbi_conf,
            "source_binary": a.source_binary,
            "dest_binary": a.dest_binary,
            "source_version": versions["src"],
            "dest_version": versions["dst"],
            "dest_state": dst_state,
            "src_ram": src_ram,
            "dst_ram": dst_ram,
        }
        if corrupt is not None:
            result["corrupt"] = corrupt
        if unaffordable is not None:
            result["unaffordable_cache"] = unaffordable
        if a.self_test_corrupt_every:
            result["self_test_corrupted_bytes"] = relay.corrupted
        if not identical and converged:
            result["differing_pages"] = -1 if differing is None else len(differing)
            result["first_differing_offsets"] = [hex(x) for x in (differing or [])[:8]]
        if trace is not None:
            result["trace"] = trace
        return result
    finally:
        for q in reversed(qemus):
            if q.proc.poll() is None:
                q.stop(timeout=5)
        for r in relays:
            r.close(timeout=2)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--mode", required=True,
                   choices=["stock", "fgbi-xbzrle"] + list(MULTIFD_MODES))
    p.add_argument("--source-binary", required=True)
    p.add_argument("--dest-binary", required=True)
    p.add_argument("--kernel", required=True)
    p.add_argument("--initrd", required=True)
    p.add_argument("--json", action="store_true", help="one JSON object per run on stdout")
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--bandwidth", type=parse_size, default=parse_size("64M"),
                   help="QEMU max-bandwidth, bytes/s with K/M/G suffixes (default 64M; "
                        "0: no limit)")
    p.add_argument("--zero-page-detection", choices=["none", "legacy", "multifd"],
                   help="QEMU's zero-page-detection (default: QEMU's, multifd)")
    p.add_argument("--channels", type=int, default=2,
                   help="multifd-channels of the multifd modes (default 2)")
    p.add_argument("--corrupt", type=parse_size, nargs="?", const=parse_size("8M"), default=None,
                   metavar="AFTER",
                   help="multifd modes: first migrate through a relay that flips bytes in the "
                        "payload of one multifd packet after AFTER bytes of its channel "
                        "(default 8M); that migration must fail with the source guest running, "
                        "then a fresh destination gets the same guest through a clean relay")
    p.add_argument("--unaffordable-cache", type=parse_size, nargs="?", const=0, default=None,
                   metavar="SIZE",
                   help="multifd-fgbi: first migrate with xbzrle-cache-size SIZE, a budget the "
                        "encoders cannot allocate (default: the smallest power of two over "
                        "twice the channels times this machine's RAM and swap); that migration "
                        "must fail with libfgbi's out-of-memory reason and the source guest "
                        "running, then a fresh destination gets the same guest with --cache")
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
    p.add_argument("--trace", action="store_true",
                   help="multifd-fgbi: each channel logs every page it carries with a hash of its "
                        "contents as given to the encoder and as the decoder wrote it "
                        "(QEMU_FGBI_TRACE); the run's JSON says why any page differs")
    a = p.parse_args()
    if a.cache is None:
        a.cache = a.ram // 2
    if a.runs < 1:
        p.error("--runs must be at least 1")
    if a.channels < 1 or a.channels > 255:
        p.error("--channels must be 1..255")
    if a.trace and a.mode != "multifd-fgbi":
        p.error("--trace needs --mode multifd-fgbi")
    if a.corrupt is not None and a.mode not in MULTIFD_MODES:
        p.error("--corrupt needs a multifd mode")
    if a.unaffordable_cache is not None:
        if a.mode != "multifd-fgbi":
            p.error("--unaffordable-cache needs --mode multifd-fgbi")
        if a.corrupt is not None:
            p.error("--unaffordable-cache and --corrupt are one failed migration each: one at a time")
        with open("/proc/sys/vm/overcommit_memory") as f:
            if f.read().strip() == "1":
                # every allocation succeeds; writing the budget would meet the OOM killer
                p.error("--unaffordable-cache: vm.overcommit_memory is 1 (always): no budget "
                        "is refused here")
        if a.unaffordable_cache == 0:
            with open("/proc/meminfo") as f:
                kib = {l.split(":")[0]: int(l.split()[1]) for l in f if l.split()[1].isdigit()}
            beyond = 2 * a.channels * (kib["MemTotal"] + kib.get("SwapTotal", 0)) * 1024
            a.unaffordable_cache = 1 << (beyond - 1).bit_length()

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
        t = r.get("trace")
        if not r["verified"]:
            why = ""
            if t:
                why = "; the trace: " + ", ".join(f"{n} {k.replace('_', ' ')}"
                                                  for k, n in t["differing"].items() if n)
            problems.append(f"the RAM files differ on {r.get('differing_pages')} pages "
                            f"(first at {r.get('first_differing_offsets')}){why}")
        if t and (t["applied_not_as_sent"] or t["sent_never_applied"] or t["on_two_channels"]):
            problems.append(f"the trace: {t['applied_not_as_sent']} pages applied otherwise than "
                            f"sent (first at {t['applied_not_as_sent_first']}), "
                            f"{t['sent_never_applied']} sent and never applied, "
                            f"{t['on_two_channels']} carried on two channels")
        if not r["converged"]:
            problems.append("the migration did not converge within the time limit")
        elif a.stopped_guest or a.mode in MULTIFD_MODES:
            pass  # one pass of a stopped guest, or multifd: no XBZRLE page is expected
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
            elif s["mismatches"]:
                problems.append(f"{s['mismatches']} of {s['checked']} encodings did not rebuild "
                                f"the new page (QEMU_FGBI_XBZRLE_CHECK)")
            elif s["encoder"] != "fgbi_xbzrle_encode" and not os.environ.get(
                    "QEMU_FGBI_XBZRLE_ENCODER"):
                problems.append(f"the source encoded with '{s['encoder']}', not libfgbi")
        elif a.mode == "stock" and r["fgbi_encode"] is not None:
            problems.append("the stock source reported libfgbi calls")
        if a.mode == "multifd-fgbi" and r["converged"]:
            snd, rcv = r["fgbi_multifd_send"] or {}, r["fgbi_multifd_recv"] or {}
            epochs = sum(c.get("epochs", 0) for c in snd.values())
            frames = sum(c.get("frames", 0) for c in rcv.values())
            rejected = sum(c.get("rejected", 0) for c in rcv.values())
            if epochs == 0:
                problems.append("libfgbi's encoders made no frame")
            elif epochs != frames or rejected:
                problems.append(f"the source's encoders made {epochs} frames, the destination's "
                                f"decoders applied {frames} and rejected {rejected}")
        r["verified"] = r["verified"] and not problems
        r["problems"] = problems
        if a.json:
            print(json.dumps(r), flush=True)
        log(f"run {run}: {'verified' if r['verified'] else 'FAILED'}: total {r['total_ms']} ms, "
            f"downtime {r['downtime_ms']} ms, {r['rounds']} rounds, wire {r['wire_bytes']} B, "
            f"xbzrle pages {r['xbzrle_pages']} (cache miss {r['xbzrle_cache_miss']}, "
            f"overflow {r['xbzrle_overflow']}), encoding rate {r['encoding_rate']}"
            + (f", fgbi_xbzrle_encode calls {r['fgbi_encode']['calls']}"
               if r["fgbi_encode"] else "")
            + f", CPU s: src main {r['cpu_src_main_s']} send {r['cpu_src_send_s']}, "
              f"dst recv {r['cpu_dst_recv_s']} main {r['cpu_dst_main_s']}")
        if problems:
            for pr in problems:
                log(f"run {run}: {pr}")
            log(f"run {run}: QEMU logs, command lines, serial logs and RAM files: {rundir}")
            failed = True
            if r["converged"]:
                break  # a run that does not converge is reported; the next runs still run
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as e:
        log(f"error: {e}")
        sys.exit(1)
