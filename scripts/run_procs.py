#!/usr/bin/env python3
"""Run the Procfile's processes together (a tiny honcho); when one stops, all stop.

Usage: run_procs.py [-f Procfile] [--ready HOST:PORT] [NAME ...]

Each command runs via /bin/sh (so ${VAR:-default} works) in its own process group,
with the Procfile's folder as working directory; output lines get a "name |" prefix.
Ctrl-C / SIGTERM stops every child (SIGTERM, then SIGKILL of its whole group), exit 0.
If a child exits on its own, the others are stopped and the exit status is non-zero.
"""

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

COLORS = ["36", "33", "32", "35", "34", "31"]
ANY_HOST = ("0.0.0.0", "", "::")


def read_procfile(path: Path) -> dict[str, str]:
    procs = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            name, sep, cmd = line.partition(":")
            if sep and cmd.strip():
                procs[name.strip()] = cmd.strip()
    return procs


class Runner:
    def __init__(self, names: list[str], timeout: float) -> None:
        self.width = max(len(n) for n in [*names, "system"])
        self.color = {n: COLORS[i % len(COLORS)] for i, n in enumerate(names)}
        self.tty = sys.stdout.isatty()
        self.timeout = timeout
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.pumps: list[threading.Thread] = []

    def emit(self, name: str, text: str) -> None:
        prefix = f"{name:<{self.width}} |"
        if self.tty:
            prefix = f"\033[{self.color.get(name, '1')}m{prefix}\033[0m"
        with self.lock:
            sys.stdout.write(f"{prefix} {text.rstrip()}\n")
            sys.stdout.flush()

    def start(self, name: str, cmd: str, cwd: Path) -> None:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", f"exec {cmd}"],
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group, signalled only by us
        )
        self.children[name] = proc
        self.emit("system", f"started {name} (pid {proc.pid}): {cmd}")
        pump = threading.Thread(target=self.pump, args=(name, proc), daemon=True)
        pump.start()
        self.pumps.append(pump)

    def pump(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            self.emit(name, raw.decode(errors="replace"))

    def announce_when_listening(self, host: str, port: int) -> None:
        while not self.stopping.is_set():
            try:
                with socket.create_connection((host, port), timeout=1):
                    self.emit("system", f"Open http://{host}:{port}/")
                    return
            except OSError:
                time.sleep(0.25)

    def first_dead(self) -> tuple[str, int] | None:
        for name, proc in self.children.items():
            code = proc.poll()
            if code is not None:
                return name, code
        return None

    def stop_all(self) -> None:
        self.stopping.set()
        for name, proc in self.children.items():
            if proc.poll() is None:
                self.emit("system", f"stopping {name}")
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()  # main process only: e.g. celery stops its own pool
        deadline = time.monotonic() + self.timeout
        for name, proc in self.children.items():
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.emit("system", f"{name} ignored SIGTERM; killing it")
            signal_group(proc, signal.SIGKILL)  # also leftovers of its group
            proc.wait()
        for pump in self.pumps:
            pump.join(timeout=2)  # let the last lines of output through


def signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def parse_args() -> argparse.Namespace:
    root = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("-f", "--procfile", type=Path, default=root / "Procfile")
    ap.add_argument("--ready", metavar="HOST:PORT", help="print URL once it listens")
    ap.add_argument("--timeout", type=float, default=10.0, help="SIGTERM->SIGKILL secs")
    ap.add_argument("names", nargs="*", help="processes to run (default: all)")
    return ap.parse_args()


def main() -> int:
    args = parse_args()
    procs = read_procfile(args.procfile)
    unknown = sorted(set(args.names) - set(procs))
    if not procs or unknown:
        print(f"run_procs: unknown {unknown} or empty Procfile", file=sys.stderr)
        return 2
    if args.names:
        procs = {n: procs[n] for n in args.names}

    runner = Runner(list(procs), args.timeout)
    received: list[int] = []
    signal.signal(signal.SIGINT, lambda sig, _frame: received.append(sig))
    signal.signal(signal.SIGTERM, lambda sig, _frame: received.append(sig))

    if args.ready:
        host, _, port_text = args.ready.rpartition(":")
        host, port = ("127.0.0.1" if host in ANY_HOST else host), int(port_text)
        with socket.socket() as sock:
            if sock.connect_ex((host, port)) == 0:
                runner.emit("system", f"error: {host}:{port} is in use (set PORT)")
                return 1

    for name, cmd in procs.items():
        runner.start(name, cmd, args.procfile.resolve().parent)
    if args.ready:
        announce = runner.announce_when_listening
        threading.Thread(target=announce, args=(host, port), daemon=True).start()

    status = 0
    while not received:
        dead = runner.first_dead()
        if dead:
            name, code = dead
            runner.emit("system", f"{name} exited with status {code}; stopping all")
            status = code if code > 0 else 128 - code if code < 0 else 1
            break
        time.sleep(0.2)
    if received:
        runner.emit("system", f"got {signal.Signals(received[0]).name}; stopping all")
    runner.stop_all()
    runner.emit("system", "all stopped")
    return status


if __name__ == "__main__":
    sys.exit(main())
