#!/usr/bin/env python3
"""Record what real nginx sends upstream for each fixtures/plan/*.case file.

For every case this script
  1. starts a one-shot backend on 127.0.0.1:9001 that records the exact bytes
     of the request head (and body) it receives and answers
     "HTTP/1.1 200 OK / Content-Length: 2 / Connection: close" + "ok";
  2. writes TMP/nginx.conf = the fixed wrapper around the case's config and
     starts /usr/sbin/nginx in the foreground (daemon off, master_process off);
  3. waits until 127.0.0.1:8081 accepts, sends the case's raw request bytes,
     reads nginx's whole response;
  4. stops nginx and the backend, and writes the `--- upstream`,
     `--- upstream-body` and `--- response` sections back into the case file
     (or, with --check, compares them with what the file holds).

Python 3.11 standard library only. Loopback addresses only. Every wait is
bounded. See fixtures/plan/README.md for the case format.

Usage:
  tests/oracle/capture.py                 # re-record every case
  tests/oracle/capture.py NAME [NAME...]  # only these cases (name, name.case or path)
  tests/oracle/capture.py --check [NAME...]  # re-run, report differences, write nothing
"""

from __future__ import annotations

import argparse
import difflib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CASE_DIR = REPO / "fixtures" / "plan"

NGINX_ADDR = ("127.0.0.1", 8081)
BACKEND_ADDR = ("127.0.0.1", 9001)

BACKEND_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
)

# Response headers copied into the `--- response` section (compared
# case-insensitively, written as listed here).
RESPONSE_HEADERS = ["Location"]

# Sections in the order they are written. Everything before `--- upstream`
# is kept verbatim when a case is re-recorded.
RESULT_SECTIONS = ("upstream", "upstream-body", "response")
KNOWN_SECTIONS = ("config", "request", "body") + RESULT_SECTIONS

ENC = "utf-8"
ERRORS = "surrogateescape"  # any byte survives file -> wire -> file

STARTUP_TIMEOUT = 5.0
IO_TIMEOUT = 5.0
STOP_TIMEOUT = 5.0


def wrap_config(config: str, tmp: Path) -> str:
    """The fixed wrapper (documented in fixtures/plan/README.md)."""
    return (
        "events {}\n"
        "http {\n"
        "access_log off;\n"
        f"error_log {tmp}/error.log;\n"
        f"{config}\n"
        "}\n"
    )


# ---------------------------------------------------------------- case files


class CaseError(Exception):
    pass


class Case:
    def __init__(self, path: Path):
        self.path = path
        self.name = path.name[: -len(".case")]
        self.text = path.read_text(encoding=ENC, errors=ERRORS)
        self.sections: dict[str, list[str]] = {}
        self.prefix = ""  # verbatim text before `--- upstream`
        self._parse()

    def _parse(self) -> None:
        lines = self.text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        current = None
        prefix_end = None
        offset = 0
        for line in lines:
            if line.startswith("--- "):
                name = line[4:].strip()
                if name not in KNOWN_SECTIONS:
                    raise CaseError(f"{self.path}: unknown section {line!r}")
                if name in self.sections:
                    raise CaseError(f"{self.path}: duplicate section {line!r}")
                if name in RESULT_SECTIONS and prefix_end is None:
                    prefix_end = offset
                self.sections[name] = []
                current = name
            elif current is not None:
                self.sections[current].append(line)
            elif not (line.startswith("#") or line.strip() == ""):
                raise CaseError(f"{self.path}: text before the first section: {line!r}")
            offset += len(line) + 1
        for need in ("config", "request"):
            if need not in self.sections:
                raise CaseError(f"{self.path}: missing `--- {need}` section")
        self.prefix = self.text if prefix_end is None else self.text[:prefix_end]
        if not self.prefix.endswith("\n"):
            self.prefix += "\n"

    @property
    def config(self) -> str:
        return "\n".join(self.sections["config"])

    def request_bytes(self) -> bytes:
        head = list(self.sections["request"])
        while head and head[-1] == "":
            head.pop()
        if not head:
            raise CaseError(f"{self.path}: empty request")
        data = ("\r\n".join(head) + "\r\n\r\n").encode(ENC, ERRORS)
        if "body" in self.sections:
            data += "\r\n".join(self.sections["body"]).encode(ENC, ERRORS)
        return data

    def recorded_tail(self) -> str:
        """The result sections as currently stored in the file."""
        if "upstream" not in self.sections:
            return ""
        return self.text[len(self.prefix) :] if self.text.startswith(self.prefix) else ""


# ---------------------------------------------------------------- backend


def _next_line(sock: socket.socket, buf: bytes, pos: int, deadline: float):
    """Reads until a CRLF follows `pos`; returns (buf, index of that CRLF),
    or (buf, None) when the peer stops first."""
    while b"\r\n" not in buf[pos:]:
        more = _recv(sock, deadline)
        if not more:
            return buf, None
        buf += more
    return buf, buf.index(b"\r\n", pos)


def _read_chunked(sock: socket.socket, buf: bytes, deadline: float) -> bytes:
    """Read a chunked body; `buf` holds what was read after the head."""
    pos = 0
    while True:
        buf, eol = _next_line(sock, buf, pos, deadline)
        if eol is None:
            return buf
        size_text = buf[pos:eol].split(b";")[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return buf
        pos = eol + 2
        if size == 0:
            # trailers, up to an empty line
            while True:
                buf, eol = _next_line(sock, buf, pos, deadline)
                if eol is None:
                    return buf
                line = buf[pos:eol]
                pos = eol + 2
                if line == b"":
                    return buf[:pos]
        while len(buf) < pos + size + 2:
            more = _recv(sock, deadline)
            if not more:
                return buf
            buf += more
        pos += size + 2


def _recv(sock: socket.socket, deadline: float) -> bytes:
    left = deadline - time.monotonic()
    if left <= 0:
        return b""
    sock.settimeout(left)
    try:
        return sock.recv(65536)
    except (socket.timeout, OSError):
        return b""


def _header_value(head: bytes, name: bytes) -> bytes | None:
    for line in head.split(b"\r\n")[1:]:
        k, sep, v = line.partition(b":")
        if sep and k.strip().lower() == name.lower():
            return v.strip()
    return None


def read_message(sock: socket.socket, deadline: float, *, response: bool = False,
                 head_request: bool = False) -> tuple[bytes, bytes, bool]:
    """Read one HTTP message: (head without the blank line, body, complete)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        more = _recv(sock, deadline)
        if not more:
            return buf, b"", False
        buf += more
    end = buf.index(b"\r\n\r\n")
    head, rest = buf[:end], buf[end + 4 :]
    status = None
    if response:
        parts = head.split(b" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        if head_request or status in (204, 304) or (status is not None and status < 200):
            return head, rest, True
    te = _header_value(head, b"transfer-encoding")
    cl = _header_value(head, b"content-length")
    if te is not None and b"chunked" in te.lower():
        body = _read_chunked(sock, rest, deadline)
        return head, body, True
    if cl is not None and cl.isdigit():
        n = int(cl)
        while len(rest) < n:
            more = _recv(sock, deadline)
            if not more:
                return head, rest, False
            rest += more
        return head, rest[:n] if not response else rest, True
    if response:
        while True:  # read to EOF
            more = _recv(sock, deadline)
            if not more:
                break
            rest += more
    return head, rest, True


class Backend:
    """One-shot raw TCP backend on 127.0.0.1:9001 that records requests."""

    def __init__(self) -> None:
        self.requests: list[tuple[bytes, bytes]] = []
        self.errors: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(BACKEND_ADDR)
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            with conn:
                try:
                    deadline = time.monotonic() + IO_TIMEOUT
                    head, body, _ = read_message(conn, deadline)
                    with self.lock:
                        self.requests.append((head, body))
                    conn.settimeout(IO_TIMEOUT)
                    conn.sendall(BACKEND_RESPONSE)
                    try:
                        conn.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                except OSError as e:
                    self.errors.append(f"backend: {e}")

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=STOP_TIMEOUT)
        self.sock.close()


# ---------------------------------------------------------------- nginx


def ensure_free(addr) -> None:
    """Fail early if something already listens where nginx should."""
    deadline = time.monotonic() + STOP_TIMEOUT
    while True:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
            return
        except OSError as e:
            if time.monotonic() > deadline:
                raise CaseError(f"{addr[0]}:{addr[1]} is in use ({e}); stop what listens there")
            time.sleep(0.1)
        finally:
            s.close()


def wait_port(addr, proc: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(addr, timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT)


def run_case(case: Case, nginx: str, keep: bool = False) -> str:
    """Run one case through nginx; return the new result tail text."""
    tmp = Path(tempfile.mkdtemp(prefix=f"rginx-oracle-{case.name}-"))
    backend = None
    proc = None
    try:
        conf = tmp / "nginx.conf"
        conf.write_text(wrap_config(case.config, tmp), encoding=ENC, errors=ERRORS)
        ensure_free(NGINX_ADDR)
        try:
            backend = Backend()
        except OSError as e:
            raise CaseError(f"{case.name}: cannot listen on {BACKEND_ADDR[0]}:{BACKEND_ADDR[1]}: {e}")
        proc = subprocess.Popen(
            [
                nginx,
                "-p", f"{tmp}/",
                "-c", str(conf),
                "-e", f"{tmp}/error.log",
                "-g", f"daemon off; master_process off; pid {tmp}/nginx.pid;",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        if not wait_port(NGINX_ADDR, proc, STARTUP_TIMEOUT):
            stop_process(proc)
            out = proc.stdout.read().decode(ENC, "replace") if proc.stdout else ""
            log = (tmp / "error.log").read_text(errors="replace") if (tmp / "error.log").exists() else ""
            raise CaseError(f"{case.name}: nginx did not start\n{out}{log}")

        deadline = time.monotonic() + IO_TIMEOUT
        with socket.create_connection(NGINX_ADDR, timeout=IO_TIMEOUT) as c:
            c.sendall(case.request_bytes())
            method = case.sections["request"][0].split(" ", 1)[0] if case.sections["request"] else ""
            # skip interim 1xx responses (e.g. 100 Continue), keep the final one
            while True:
                head, body, _ = read_message(c, deadline, response=True,
                                             head_request=(method == "HEAD"))
                parts = head.split(b" ", 2)
                status = parts[1] if len(parts) > 1 else b""
                if status.isdigit() and 100 <= int(status) < 200 and status != b"101":
                    # body holds what followed the interim head: push it back
                    c2 = _Pushback(c, body)
                    head, body, _ = read_message(c2, deadline, response=True,
                                                 head_request=(method == "HEAD"))
                break
        # nginx answered; the backend, if contacted, has recorded the request
        # before it replied. Give a late connection a moment anyway.
        time.sleep(0.05)
        stop_process(proc)
        backend.stop()
        if backend.errors:
            raise CaseError(f"{case.name}: " + "; ".join(backend.errors))
        if len(backend.requests) > 1:
            raise CaseError(f"{case.name}: backend received {len(backend.requests)} requests")
        if not head:
            raise CaseError(f"{case.name}: no response from nginx")
        return format_tail(case, backend.requests, head)
    finally:
        if proc is not None:
            stop_process(proc)
            if proc.stdout:
                proc.stdout.close()
        if backend is not None and not backend.stopping.is_set():
            backend.stop()
        if keep:
            print(f"  kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


class _Pushback:
    """A socket wrapper that first returns already-read bytes."""

    def __init__(self, sock: socket.socket, data: bytes):
        self.sock, self.data = sock, data

    def settimeout(self, t):
        self.sock.settimeout(t)

    def recv(self, n):
        if self.data:
            d, self.data = self.data, b""
            return d
        return self.sock.recv(n)


def _lines_of(data: bytes, what: str, case: Case) -> list[str]:
    text = data.decode(ENC, ERRORS)
    lines = text.split("\r\n")
    for line in lines:
        if "\r" in line or "\n" in line:
            raise CaseError(f"{case.name}: {what} has a bare CR or LF; not representable")
        if line.startswith("--- "):
            raise CaseError(f"{case.name}: {what} has a line starting with '--- '")
    return lines


def format_tail(case: Case, requests, response_head: bytes) -> str:
    out = ["--- upstream"]
    body_lines = None
    if not requests:
        out.append("(none)")
    else:
        head, body = requests[0]
        out.extend(_lines_of(head, "upstream head", case))
        if body:
            body_lines = _lines_of(body, "upstream body", case)
    if body_lines is not None:
        out.append("--- upstream-body")
        out.extend(body_lines)
    out.append("--- response")
    rlines = response_head.decode(ENC, ERRORS).split("\r\n")
    parts = rlines[0].split(" ", 2)
    out.append(parts[1] if len(parts) > 1 else "?")
    for want in RESPONSE_HEADERS:
        for line in rlines[1:]:
            k, sep, v = line.partition(":")
            if sep and k.strip().lower() == want.lower():
                out.append(f"{want}: {v.strip()}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- main


def find_cases(names: list[str]) -> list[Path]:
    if not names:
        return sorted(CASE_DIR.glob("*.case"))
    paths = []
    for n in names:
        p = Path(n)
        if p.suffix == ".case" and p.exists():
            paths.append(p)
            continue
        p = CASE_DIR / (n if n.endswith(".case") else n + ".case")
        if not p.exists():
            raise SystemExit(f"no such case: {n} ({p})")
        paths.append(p)
    return paths


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases", nargs="*", help="case names (default: all in fixtures/plan)")
    ap.add_argument("--check", action="store_true",
                    help="re-run and report differences, write nothing")
    ap.add_argument("--nginx", default="/usr/sbin/nginx", help="nginx binary")
    ap.add_argument("--keep", action="store_true", help="keep the temporary prefix dirs")
    ap.add_argument("-q", "--quiet", action="store_true", help="print only problems")
    args = ap.parse_args()

    paths = find_cases(args.cases)
    if not paths:
        print("no cases found", file=sys.stderr)
        return 2
    failed = 0
    changed = 0
    for path in paths:
        try:
            case = Case(path)
            tail = run_case(case, args.nginx, keep=args.keep)
        except CaseError as e:
            print(f"ERROR {e}", file=sys.stderr)
            failed += 1
            continue
        old = case.recorded_tail()
        if args.check:
            if old != tail:
                changed += 1
                print(f"DIFF  {case.name}")
                sys.stdout.writelines(
                    difflib.unified_diff(
                        old.splitlines(True), tail.splitlines(True),
                        f"{case.name} (recorded)", f"{case.name} (nginx now)",
                    )
                )
            elif not args.quiet:
                print(f"ok    {case.name}")
        else:
            if old != tail:
                changed += 1
                path.write_text(case.prefix + tail, encoding=ENC, errors=ERRORS)
                print(f"wrote {case.name}")
            elif not args.quiet:
                print(f"same  {case.name}")
    verb = "differ" if args.check else "rewritten"
    print(f"{len(paths)} case(s), {changed} {verb}, {failed} error(s)")
    if args.check:
        # the plain summary line CI tools read
        print(f"oracle: {len(paths) - changed - failed} passed, {changed + failed} failed")
    if failed:
        return 2
    if args.check and changed:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
