#!/usr/bin/env python3
"""Checks that the patched QEMU refuses multifd-compression fgbi together with postcopy-ram or
zero-page-detection=legacy, in either order, with a clear error (their pages bypass the fgbi
channels). Usage: integration/qemu/refusals.py PATCHED-QEMU-BINARY. Exit status 0 when every
refusal happened."""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time


def main():
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "qmp.sock")
        proc = subprocess.Popen([binary, "-machine", "none", "-nodefaults", "-display", "none",
                                 "-S", "-qmp", f"unix:{path},server=on,wait=off"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            return check(proc, path)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def check(proc, path):
    deadline = time.monotonic() + 30
    while True:
        try:
            sock = socket.socket(socket.AF_UNIX)
            sock.settimeout(30)
            sock.connect(path)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                print("refusals: the QEMU did not start", file=sys.stderr)
                return 1
            time.sleep(0.05)
    f = sock.makefile("rw")
    f.readline()

    def cmd(name, **args):
        f.write(json.dumps({"execute": name, "arguments": args} if args else {"execute": name}))
        f.write("\n")
        f.flush()
        while True:
            reply = json.loads(f.readline())
            if "event" not in reply:
                return reply

    def caps(cap, state):
        return cmd("migrate-set-capabilities", capabilities=[{"capability": cap, "state": state}])

    def params(**kv):
        return cmd("migrate-set-parameters", **{k.replace("_", "-"): v for k, v in kv.items()})

    cmd("qmp_capabilities")
    failures = 0

    def expect_error(what, reply, word):
        nonlocal failures
        desc = reply.get("error", {}).get("desc", "")
        ok = "fgbi" in desc and word in desc
        print(f"refusals: {what}: {'refused' if ok else 'NOT REFUSED'}: {desc or reply}")
        failures += not ok

    def expect_ok(what, reply):
        nonlocal failures
        if "error" in reply:
            print(f"refusals: {what}: unexpected error {reply['error']}")
            failures += 1

    expect_ok("multifd-compression fgbi", params(multifd_compression="fgbi"))
    expect_error("postcopy-ram after fgbi", caps("postcopy-ram", True), "ostcopy")
    expect_error("zero-page-detection legacy after fgbi", params(zero_page_detection="legacy"),
                 "legacy")
    expect_ok("multifd-compression none", params(multifd_compression="none"))
    expect_ok("postcopy-ram without fgbi", caps("postcopy-ram", True))
    expect_error("fgbi after postcopy-ram", params(multifd_compression="fgbi"), "ostcopy")
    expect_ok("postcopy-ram off", caps("postcopy-ram", False))
    expect_ok("zero-page-detection legacy without fgbi", params(zero_page_detection="legacy"))
    expect_error("fgbi after zero-page-detection legacy", params(multifd_compression="fgbi"),
                 "legacy")
    cmd("quit")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
