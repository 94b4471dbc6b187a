"""A real nginx for tests, running the shipped site config (deploy/nginx/chat.conf).

The site file is used as shipped except for what only a production host has: its
listen ports, the daphne ports of the upstream, the certificate and the static
root. Each of those substitutions must match exactly once, so a change to the
shipped file that the test would no longer exercise fails loudly here. nginx
runs in the foreground with everything (pid, logs, temp files) in a temp dir.
"""

import os
import re
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.deploy import DEPLOY
from tests.support.servers import free_port, wait_port

SITE = DEPLOY / "nginx" / "chat.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        """Verification on, trusting only this self-signed certificate."""
        return ssl.create_default_context(cafile=str(self.cert))


def self_signed_certificate(directory: Path, host: str = "localhost") -> Certificate:
    cert, key = directory / "fullchain.pem", directory / "privkey.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={host}",
         "-addext", f"subjectAltName=DNS:{host},IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return Certificate(cert=cert, key=key)


def _sub(pattern: str, replacement: str, text: str) -> str:
    new, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    if count != 1:
        raise AssertionError(f"deploy/nginx/chat.conf: expected one match of {pattern!r}, found {count}")
    return new


def site_for_test(
    *, https_port: int, http_port: int, upstreams: list[int], cert: Certificate, static_root: Path, webroot: Path
) -> str:
    """The shipped site config with this host's ports, certificate and paths."""
    text = SITE.read_text()
    servers = re.findall(r"^\s*server 127\.0\.0\.1:\d+ (.*);$", text, flags=re.MULTILINE)
    if not servers or len(set(servers)) != 1:
        raise AssertionError("deploy/nginx/chat.conf: expected upstream lines `server 127.0.0.1:PORT <params>;`")
    lines = "".join(f"    server 127.0.0.1:{port} {servers[0]};\n" for port in upstreams)
    text = re.sub(r"^\s*server 127\.0\.0\.1:\d+ .*;\n", "", text, flags=re.MULTILINE)
    text = _sub(r"^(\s*least_conn;\n)", rf"\g<1>{lines}", text)
    text = _sub(r"^(\s*)listen 80;$", rf"\g<1>listen 127.0.0.1:{http_port};", text)
    text = _sub(r"^(\s*)listen 443 ssl http2;$", rf"\g<1>listen 127.0.0.1:{https_port} ssl http2;", text)
    text = _sub(r"^(\s*ssl_certificate) \S+;$", rf"\g<1> {cert.cert};", text)
    text = _sub(r"^(\s*ssl_certificate_key) \S+;$", rf"\g<1> {cert.key};", text)
    text = _sub(r"^(\s*alias) /srv/chat/staticfiles/;$", rf"\g<1> {static_root}/;", text)
    text = _sub(r"^(\s*root) /var/www/letsencrypt;$", rf"\g<1> {webroot};", text)
    return text


@dataclass
class Nginx:
    """nginx -c <dir>/nginx.conf -g 'daemon off; pid …;' with the site config included."""

    directory: Path
    site: str
    https_port: int
    http_port: int
    proc: subprocess.Popen | None = None

    def _write(self) -> Path:
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        (self.directory / "site.conf").write_text(self.site)
        d = self.directory
        # As root the workers would drop to `nobody`, who cannot read the test's temp dir.
        user = "user root root;\n" if os.geteuid() == 0 else ""
        conf = d / "nginx.conf"
        conf.write_text(
            f"{user}worker_processes 1;\nerror_log {d}/error.log info;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            "    include /etc/nginx/mime.types;\n"
            f"    access_log {d}/access.log;\n"
            f"    client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n"
            f"    fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n"
            f"    include {d}/site.conf;\n"
            "}\n"
        )
        return conf

    def _command(self, *extra: str) -> list[str]:
        conf, d = self._write(), self.directory
        foreground = f"daemon off; pid {d}/nginx.pid;"
        return [NGINX, "-p", str(d), "-e", str(d / "error.log"), "-c", str(conf), "-g", foreground, *extra]

    def start(self) -> "Nginx":
        test = subprocess.run(self._command("-t"), capture_output=True, text=True)
        if test.returncode != 0:
            raise RuntimeError(f"nginx -t refused the config:\n{test.stderr}")
        log = open(self.directory / "stderr.log", "ab")
        self.proc = subprocess.Popen(self._command(), stdout=log, stderr=subprocess.STDOUT)
        wait_port(self.https_port, self.proc)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    @classmethod
    def for_site(cls, directory: Path, *, upstreams: list[int], cert: Certificate, static_root: Path) -> "Nginx":
        https_port, http_port = free_port(), free_port()
        webroot = directory / "acme"
        webroot.mkdir(parents=True, exist_ok=True)
        site = site_for_test(
            https_port=https_port,
            http_port=http_port,
            upstreams=upstreams,
            cert=cert,
            static_root=static_root,
            webroot=webroot,
        )
        return cls(directory=directory, site=site, https_port=https_port, http_port=http_port)
