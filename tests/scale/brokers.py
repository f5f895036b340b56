"""Real infrastructure for the scale-out tests, each started on a free 127.0.0.1 port in a temp dir
and stopped by its fixture: Mosquitto (Debian ``mosquitto``) with a password file and persistence,
and nginx (Debian ``nginx``) as a round-robin HTTP load balancer."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Mosquitto", "Nginx", "free_port", "mosquitto_unavailable_reason", "nginx_unavailable_reason",
           "wait_port"]

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout_s: float = 20.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Until something accepts connections on 127.0.0.1:``port`` (fail if ``proc`` exits first)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout_s:g} s") from None
            time.sleep(0.02)


def mosquitto_unavailable_reason() -> str | None:
    for tool in (MOSQUITTO, MOSQUITTO_PASSWD):
        if not Path(tool).exists():
            return f"{tool} not found (Debian package mosquitto)"
    return None


def nginx_unavailable_reason() -> str | None:
    return None if Path(NGINX).exists() else f"{NGINX} not found (Debian package nginx)"


@dataclass
class Mosquitto:
    """A broker requiring ``user``/``password``, persisting its sessions and queued QoS 1 messages in
    ``root`` (so a restart loses nothing it acknowledged). :meth:`restart` stops it gracefully (it
    writes its persistence file on SIGTERM) and starts it again on the same port."""

    root: Path
    port: int = field(default_factory=free_port)
    user: str = "prognos"
    password: str = "broker-secret"
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        passwd = self.root / "passwd"
        subprocess.run([MOSQUITTO_PASSWD, "-b", "-c", str(passwd), self.user, self.password], check=True,
                       capture_output=True, timeout=30)
        (self.root / "mosquitto.conf").write_text("\n".join([
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous false",
            f"password_file {passwd}",
            "persistence true",
            f"persistence_location {self.root}/",
            "autosave_interval 1",
            "max_queued_messages 0",  # 0 = no limit: a restart test must not drop queued messages
            "max_inflight_messages 100",
            f"user {getpass.getuser()}",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "",
        ]))

    def start(self) -> None:
        log = open(self.root / "broker.log", "ab")  # noqa: SIM115 - the broker process owns it
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.root / "mosquitto.conf")], stdout=log, stderr=log)
        log.close()
        wait_port(self.port, proc=self.proc)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def settings_overrides(self) -> dict[str, object]:
        return {"mqtt_host": "127.0.0.1", "mqtt_port": self.port, "mqtt_username": self.user,
                "mqtt_password": self.password, "mqtt_reconnect_min_s": 1, "mqtt_reconnect_max_s": 2}


@dataclass
class Nginx:
    """nginx in the foreground (``daemon off``) with a private prefix, round-robin over ``upstreams``
    (``host:port`` of HTTP servers), retrying a request on the next upstream only when it could not
    connect (a POST that reached a gateway is never sent twice)."""

    root: Path
    upstreams: list[str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        for d in ("logs", "tmp", "conf"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        servers = "\n".join(f"        server {u} max_fails=0;" for u in self.upstreams)
        user = "" if os.geteuid() != 0 else "user root;\n"
        (self.root / "conf" / "nginx.conf").write_text(f"""{user}worker_processes 1;
pid {self.root}/nginx.pid;
error_log {self.root}/logs/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {self.root}/tmp/body;
    proxy_temp_path {self.root}/tmp/proxy;
    fastcgi_temp_path {self.root}/tmp/fastcgi;
    uwsgi_temp_path {self.root}/tmp/uwsgi;
    scgi_temp_path {self.root}/tmp/scgi;
    upstream gateways {{
{servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{self.port};
        client_max_body_size 16m;
        location / {{
            proxy_pass http://gateways;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_next_upstream error;
            proxy_read_timeout 60s;
        }}
    }}
}}
""")
        log = open(self.root / "logs" / "stderr.log", "ab")  # noqa: SIM115 - the nginx process owns it
        self.proc = subprocess.Popen([NGINX, "-p", str(self.root), "-c", str(self.root / "conf" / "nginx.conf"),
                                      "-g", "daemon off;"], stdout=log, stderr=log)
        log.close()
        wait_port(self.port, proc=self.proc)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: finish open requests
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
