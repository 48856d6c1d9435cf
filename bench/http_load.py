"""HTTP load over loopback for the server benches: servers in processes of their own, a lean client.

The client speaks HTTP/1.1 with keep-alive over asyncio streams (uvloop): one connection per
simulated client, so its own cost per request stays far below any server's and the same client
measures every server of a run. Servers run as subprocesses (the app under uvicorn as `tenantcrm
serve` runs it, the floor under uvicorn, PostGraphile under node) and are stopped by their pid.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter

from common import BENCH_DIR, Result, Scratch, percentile

from tenantcrm.settings import REPO_ROOT

PYTHON = sys.executable
BIN = Path(PYTHON).parent


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    """A server process listening on 127.0.0.1:port."""

    name: str
    port: int
    process: subprocess.Popen

    def rss_mb(self) -> float:
        """Resident memory of the process now (its children excluded: there are none)."""
        return _status_kb(self.process.pid, "VmRSS") / 1024

    def peak_rss_mb(self) -> float:
        return _status_kb(self.process.pid, "VmHWM") / 1024

    def cpu_seconds(self) -> float:
        """User and system CPU time the process has used so far: per request, it holds up where
        wall times do not, on a machine shared with other work."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} for process {pid}")


def start(name: str, argv: Sequence[str], env: dict[str, str], port: int, cwd: Path = REPO_ROOT) -> Server:
    """Start a server and wait until it answers GET /healthz (any HTTP status counts)."""
    process = subprocess.Popen(argv, env={**os.environ, **env}, cwd=cwd, stdout=subprocess.DEVNULL)
    server = Server(name, port, process)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited with {process.returncode} before it answered")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                if conn.recv(16).startswith(b"HTTP/1."):
                    log(f"{name} is up on port {port}")
                    return server
        except OSError:
            time.sleep(0.2)
    server.stop()
    raise SystemExit(f"{name} did not answer on port {port} within 90 s")


def app_server(scratch: Scratch, port: int | None = None) -> Server:
    """The app as production runs it (`tenantcrm serve`: uvicorn, one process), over the scratch
    database. Rate limits off (the load would exceed them), jobs off (nothing queued), logs at
    WARNING (the access log would be the bench's biggest cost)."""
    settings = scratch.settings
    port = port or free_port()
    env = {
        "DATABASE_URL": scratch.database_url,
        "TENANTCRM_APP_ROLE": settings.app_role,
        "TENANTCRM_DATA_DIR": str(settings.data_dir),
        "TENANTCRM_ENV": "production",
        "TENANTCRM_SECRET_KEY": settings.secret_key,
        "TENANTCRM_MASTER_KEY_FILE": str(settings.data_dir / "master.key"),
        "TENANTCRM_RUN_JOBS": "0",
        "TENANTCRM_RATE_LIMIT_TOKEN": "0",
        "TENANTCRM_RATE_LIMIT_USER": "0",
        "TENANTCRM_RATE_LIMIT_TENANT": "0",
        "TENANTCRM_LOG_LEVEL": "WARNING",
    }
    return start("app", [str(BIN / "tenantcrm"), "serve", "--port", str(port)], env, port)


def floor_server(scratch: Scratch, schema: str, port: int | None = None) -> Server:
    """bench/floor_server.py under uvicorn, as the tenant schema's owner."""
    port = port or free_port()
    env = {"FLOOR_DATABASE_URL": scratch.database_url, "FLOOR_SCHEMA": schema}
    argv = [PYTHON, "-m", "uvicorn", "floor_server:app", "--port", str(port), "--log-level", "warning"]
    return start("floor", [*argv, "--no-access-log", "--app-dir", str(BENCH_DIR)], env, port)


def postgraphile_server(scratch: Scratch, schema: str, port: int | None = None) -> Server:
    """PostGraphile 4 (bench/postgraphile, installed by `npm ci` there) over the tenant schema, as its
    owner: the way a team would put it in front of the same database."""
    folder = BENCH_DIR / "postgraphile"
    if not (folder / "node_modules" / "postgraphile").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=folder, check=True)
    port = port or free_port()
    env = {"DATABASE_URL": scratch.database_url, "SCHEMA": schema, "PORT": str(port)}
    return start("postgraphile", ["node", "server.js"], env, port, cwd=folder)


class Connection:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, chunked = None, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                parts.append(chunk[:-2])
            return status, b"".join(parts)
        return status, await self.reader.readexactly(length or 0)

    def close(self) -> None:
        self.writer.close()


def request_bytes(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class Load:
    """Latencies (s) of one load run, its wall time and the server process's CPU time."""

    seconds: list[float] = field(default_factory=list)
    wall: float = 0.0
    cpu: float = 0.0

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu / len(self.seconds) * 1000

    @property
    def throughput(self) -> float:
        return len(self.seconds) / self.wall

    def p(self, q: float) -> float:
        return percentile(self.seconds, q) * 1000

    def result(self, name: str, notes: str) -> Result:
        """This load as a results.json entry; reference, ratio and target are the caller's."""
        p50, p99, throughput = round(self.p(50), 3), round(self.p(99), 3), round(self.throughput, 1)
        return Result(name, p50, p99, throughput, None, None, None, None, notes)


# A request picks its bytes (by request number), and the check sees each answer: it raises on a
# wrong one, so a server that fails fast never looks fast.
Pick = Callable[[int], bytes]
Check = Callable[[int, bytes], None]


async def run_load(
    server: Server, pick: Pick, check: Check, concurrency: int, requests: int, warmup: int
) -> Load:
    """`warmup` unmeasured requests, then `requests` measured ones over `concurrency` connections,
    each sending its next request as soon as the previous answer is in (a closed loop)."""
    port = server.port
    connections = [await Connection.open(port) for _ in range(concurrency)]
    load = Load()
    counter = iter(range(warmup, warmup + requests))

    async def send(connection: Connection, number: int) -> float:
        began = perf_counter()
        status, body = await connection.send(pick(number))
        elapsed = perf_counter() - began
        if status != 200:
            raise SystemExit(f"HTTP {status} on port {port}: {body[:300]!r}")
        check(number, body)
        return elapsed

    async def client(connection: Connection) -> None:
        for number in counter:
            load.seconds.append(await send(connection, number))

    try:
        for number in range(warmup):  # on one connection; then the measured run from a common start
            await send(connections[0], number)
        start, cpu = perf_counter(), server.cpu_seconds()
        await asyncio.gather(*(client(c) for c in connections))
        load.wall, load.cpu = perf_counter() - start, server.cpu_seconds() - cpu
    finally:
        for connection in connections:
            connection.close()
    return load


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])
