"""The set-up: mirror discovery for the Vulkan driver, an idempotent `make setup`, and `make lab`."""
import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from conftest import REPO

SCRIPT = REPO / "wmlib" / "setup_system.sh"


def find_mirror(apt_dir, suite="bookworm"):
    cmd = f'source "{SCRIPT}"; find_mirror {suite}'
    out = subprocess.run(["bash", "-c", cmd], env={**os.environ, "APT_DIR": str(apt_dir)},
                         capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def test_mirror_is_read_from_deb822_sources(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
        "Components: main\nSigned-By: /k.gpg\n\n"
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main contrib\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    assert find_mirror(tmp_path) == ["http://mirror.example/debian\t/usr/share/keyrings/debian-archive-keyring.gpg"]


def test_mirror_is_read_from_one_line_sources(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main non-free\n")
    assert find_mirror(tmp_path) == ["http://mirror.example/debian\t"]


def test_no_mirror_for_another_release(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("deb http://mirror.example/debian trixie main\n")
    assert find_mirror(tmp_path) == []


def make(*args, timeout=600):
    return subprocess.run(["make", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def test_setup_again_only_checks():
    result = make("setup")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "installing wmlib" not in result.stdout  # nothing reinstalled
    assert "nothing to install" in result.stdout and "[setup] ready" in result.stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_make_lab_serves_jupyterlab_on_course_and_stops_cleanly():
    port, token = free_port(), "wmr-test-token"
    lab_args = f"--no-browser --ip=127.0.0.1 --port={port} --ServerApp.port_retries=0 --IdentityProvider.token={token}"
    proc = subprocess.Popen(["make", "lab", f"LAB_ARGS={lab_args}"], cwd=REPO, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline, status = time.monotonic() + 120, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as r:
                    status = r.status
                    break
            except OSError:
                time.sleep(0.5)
        assert status == 200, f"JupyterLab did not answer on {base}"
        with urllib.request.urlopen(f"{base}/api/contents?token={token}", timeout=5) as r:
            names = {item["name"] for item in __import__("json").load(r)["content"]}
        expected = {p.name for p in (REPO / "course").iterdir() if not p.name.startswith(".")}
        assert names == expected, "JupyterLab is not serving course/"
        with urllib.request.urlopen(f"{base}/lab?token={token}", timeout=10) as r:
            assert r.status == 200 and b"JupyterLab" in r.read()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("JupyterLab did not stop within 30 s of SIGTERM")
    assert "received signal 15, stopping" in out and "Shutting down" in out, out[-2000:]
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{base}/api/status", timeout=2)
