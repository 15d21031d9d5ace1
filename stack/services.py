"""Background services of the local stack, each a detached process with a pid file and a log.

One small mechanism for every long-running piece the main job starts (Airflow components, the
replay server, the mail sink, the web UI), so `newsradar stop` can find and stop all of them.
Stopping signals the leader only: signalling a whole process group made Airflow's scheduler hang.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Service:
    name: str
    command: Sequence[str]
    run_dir: Path
    log_dir: Path

    @property
    def pidfile(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log(self) -> Path:
        return self.log_dir / f"{self.name}.log"


def alive(pid: int) -> bool:
    try:  # reap it first if it is our own exited child, else kill(0) sees the zombie as alive
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pid_of(service: Service) -> int | None:
    try:
        pid = int(service.pidfile.read_text())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


def start(service: Service, env: Mapping[str, str] | None = None) -> int:
    """Start the service unless it runs already; return its pid."""
    running = pid_of(service)
    if running is not None:
        return running
    service.run_dir.mkdir(parents=True, exist_ok=True)
    service.log_dir.mkdir(parents=True, exist_ok=True)
    with service.log.open("ab") as out:
        proc = subprocess.Popen(
            list(service.command),
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    service.pidfile.write_text(str(proc.pid))
    return proc.pid


def terminate(pid: int, name: str, echo: Echo = print, timeout: float = 30.0, group: bool = True) -> None:
    """SIGTERM, wait up to ``timeout``, then SIGKILL (the whole process group with ``group``)."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.3)
    if alive(pid):
        echo(f"{name} (pid {pid}) did not stop in {timeout:.0f}s; killing it")
        (os.killpg if group else os.kill)(pid, signal.SIGKILL)


def stop(service: Service, echo: Echo = print, timeout: float = 30.0) -> bool:
    """SIGTERM the leader, SIGKILL its group if it lingers; False when it was not running."""
    pid = pid_of(service)
    if pid is None:
        service.pidfile.unlink(missing_ok=True)
        return False
    terminate(pid, service.name, echo, timeout)
    service.pidfile.unlink(missing_ok=True)
    echo(f"stopped {service.name} (pid {pid})")
    return True


def log_tail(service: Service, lines: int = 20) -> str:
    if not service.log.is_file():
        return "(no log)"
    return "\n".join(service.log.read_text(errors="replace").splitlines()[-lines:])
