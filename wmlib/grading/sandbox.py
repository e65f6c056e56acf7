"""A Jupyter kernel for untrusted code: bubblewrap for isolation, rlimits for resources.

Why these tools: bubblewrap (``bwrap``) is the small, well-kept sandbox Flatpak runs
on; it builds a private view of the file system from read-only binds and gives the
process new network, PID, IPC and UTS namespaces, so student code sees no network,
no other processes and no files but the ones we bind. ``prlimit`` (util-linux) caps
address space, processes, file size and open files. Neither needs a daemon.

The kernel talks to the grader over Unix-domain sockets (Jupyter's ``ipc``
transport) in the submission's own folder: TCP would not cross the network namespace.

Two modes:
- **as root** (CI, a grading server): bwrap mounts as root, then the kernel drops to
  an unprivileged user id of its own (``sandbox_uid()``) inside the sandbox, so the
  process limit applies (Linux never enforces RLIMIT_NPROC on root) and every
  process left behind is killed after each submission;
- **as a normal user**: bwrap uses an unprivileged user namespace (Debian 11+,
  Ubuntu: on by default; elsewhere ``sysctl kernel.unprivileged_userns_clone=1``),
  and the process limit is set above the user's current process count.

What the sandbox sees: the system's /usr, the Python installation and the
course's virtual environment, ``wmlib`` and ``datasets/``, all read-only, plus its
own empty folder. Not ``solutions/``, not the gradebook, not other submissions.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
import sys

from jupyter_client import AsyncKernelManager

# As root, the kernel runs as a user id of its own, which no account and no other process uses,
# so the process limit counts only sandboxed processes and every leftover can be killed. Each
# grading process claims one id of this range for its lifetime, so two graders on one machine
# never count or end each other's processes.
FIRST_SANDBOX_UID = int(os.environ.get("WMR_SANDBOX_UID", "61234"))
SANDBOX_UIDS = range(FIRST_SANDBOX_UID, FIRST_SANDBOX_UID + 64)
_claim: tuple[int, object] | None = None


def sandbox_uid() -> int:
    """This process's sandbox user id, claimed on first use by binding an abstract Unix socket
    named after it (the kernel releases the name when the process exits, however it exits)."""
    global _claim
    if _claim is None:
        import socket

        for uid in SANDBOX_UIDS:
            claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                claim.bind(f"\0wmr-sandbox-uid-{uid}")
            except OSError:
                claim.close()
                continue
            _claim = (uid, claim)
            break
        else:
            raise SandboxUnavailable(f"all {len(SANDBOX_UIDS)} sandbox user ids ({SANDBOX_UIDS.start}-"
                                     f"{SANDBOX_UIDS.stop - 1}) are held by other graders on this machine")
    return _claim[0]


class SandboxUnavailable(RuntimeError):
    """bubblewrap or prlimit is missing, or the OS refuses the namespaces it needs."""


@dataclasses.dataclass(frozen=True)
class Limits:
    memory_bytes: int = 4 << 30  # address space: TensorFlow and torch import in under 3 GiB
    # processes *and threads* (Linux counts both), beyond what the user already runs: enough for the
    # thread pools of TensorFlow, torch and BLAS (they grow with the cores), and low enough that a
    # fork bomb from a kernel holding GBs (each fork copies its page tables) hits it in seconds.
    processes: int = dataclasses.field(default_factory=lambda: 128 + 8 * (os.cpu_count() or 1))
    file_bytes: int = 64 << 20  # largest file the code may write
    open_files: int = 256


def require_tools() -> None:
    missing = [tool for tool in ("bwrap", "prlimit", "setpriv") if shutil.which(tool) is None]
    if missing:
        raise SandboxUnavailable(
            f"missing {', '.join(missing)}: `make setup` installs bubblewrap (Debian/Ubuntu: "
            "apt-get install bubblewrap util-linux); student code is never run without the sandbox")


def readonly_paths(repo: pathlib.Path) -> list[pathlib.Path]:
    """What the kernel needs to run course notebooks, all bound read-only."""
    python_home = pathlib.Path(os.path.realpath(sys.executable)).parents[1]  # the base Python install
    paths = [pathlib.Path(sys.prefix), python_home, repo / "wmlib", repo / "datasets"]
    if (repo / "datasets").is_dir():  # a dataset kept on another disk and linked in: bound where it really is
        paths += [pathlib.Path(os.path.realpath(p)) for p in (repo / "datasets").iterdir() if p.is_symlink()]
    return sorted({p for p in paths if p.exists()})


def user_process_count() -> int:
    uid = os.getuid()
    count = 0
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                count += entry.stat().st_uid == uid
            except OSError:
                pass
    return count


def sandbox_prefix(workdir: pathlib.Path, repo: pathlib.Path, limits: Limits) -> list[str]:
    """The command that wraps the kernel: bwrap (namespaces, binds) + prlimit (+ setpriv as root)."""
    require_tools()
    as_root = os.geteuid() == 0
    nproc = limits.processes if as_root else user_process_count() + limits.processes
    bwrap = ["bwrap", "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
             "--die-with-parent", "--new-session", "--hostname", "sandbox",
             "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
             "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
             "--ro-bind-try", "/etc/alternatives", "/etc/alternatives",
             "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache",
             "--ro-bind-try", "/etc/passwd", "/etc/passwd", "--ro-bind-try", "/etc/group", "/etc/group",
             "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    if not as_root:
        bwrap += ["--unshare-user"]
    binds = readonly_paths(repo) + [workdir]
    ancestors = sorted({a for path in binds for a in path.parents if a != pathlib.Path("/")},
                       key=lambda a: len(a.parts))
    for folder in ancestors:  # folders bwrap creates for the binds: traversable by the sandboxed user
        bwrap += ["--perms", "0755", "--dir", str(folder)]
    for path in binds[:-1]:
        bwrap += ["--ro-bind", str(path), str(path)]
    bwrap += ["--bind", str(workdir), str(workdir), "--chdir", str(workdir),
              "--clearenv", "--setenv", "HOME", str(workdir), "--setenv", "PATH", f"{sys.prefix}/bin:/usr/bin:/bin",
              "--setenv", "MPLBACKEND", "Agg", "--setenv", "TF_CPP_MIN_LOG_LEVEL", "2",
              "--setenv", "PYTHONDONTWRITEBYTECODE", "1", "--setenv", "WMR_DATASETS", str(repo / "datasets"),
              "--setenv", "PYTHONPATH", str(repo),  # this checkout's wmlib, whatever the venv's install points at
              "--setenv", "OMP_NUM_THREADS", "1", "--setenv", "JUPYTER_PLATFORM_DIRS", "1",
              "--setenv", "IPYTHONDIR", str(workdir / ".ipython")]
    limit = ["prlimit", f"--as={limits.memory_bytes}", f"--nproc={nproc}", f"--fsize={limits.file_bytes}",
             f"--nofile={limits.open_files}", "--"]
    inner = limit
    if as_root:
        uid = sandbox_uid()
        inner = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                 "--inh-caps=-all", "--bounding-set=-all", "--"] + limit
    return bwrap + ["--"] + inner


def prepare_workdir(workdir: pathlib.Path) -> None:
    """The submission's folder: writable by the sandboxed user, reachable by nobody else."""
    workdir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        for path in [workdir, *workdir.rglob("*")]:
            os.chown(path, sandbox_uid(), sandbox_uid())
    workdir.chmod(0o700)


def sandbox_processes() -> dict[int, int]:
    """pid -> parent pid of every process running as the sandbox user."""
    found, uid = {}, sandbox_uid()
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = dict(line.split(":", 1) for line in (entry / "status").read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if int(fields["Uid"].split()[0]) == uid:
            found[int(entry.name)] = int(fields["PPid"])
    return found


def end_stray_processes() -> int:
    """As root: kill what the kernel has spawned (its children and theirs), keeping the kernel itself.

    The kernel is the one sandbox process whose parent is not a sandbox process. Run
    before each graded test, so that a fork bomb or a background job a student left
    running cannot starve the tests of processes and threads.
    """
    import signal

    if os.geteuid() != 0:
        return 0
    processes = sandbox_processes()
    strays = [pid for pid, parent in processes.items() if parent in processes]
    for pid in strays:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    wait_until_dead(strays)
    return len(strays)


def wait_until_dead(pids, timeout: float = 20.0) -> None:
    """Wait until each process has exited (gone, or a zombie its parent must still reap).

    A killed process holding a large address space takes a while to exit on a busy machine;
    until it has, it still counts against the sandbox's process limit."""
    import time

    deadline = time.monotonic() + timeout
    waiting = list(pids)
    while waiting and time.monotonic() < deadline:
        still = []
        for pid in waiting:
            try:
                status = pathlib.Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            if "State:\tZ" not in status and "State:\tX" not in status:
                still.append(pid)
        waiting = still
        if waiting:
            time.sleep(0.05)


def end_sandbox_processes(timeout: float = 10.0) -> int:
    """As root: kill every process of the sandbox user (a fork bomb's children, say); return how many."""
    import signal
    import time

    if os.geteuid() != 0:
        return 0
    killed, uid = 0, sandbox_uid()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = []
        for entry in pathlib.Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and entry.stat().st_uid == uid:
                    alive.append(int(entry.name))
            except OSError:
                pass
        if not alive:
            break
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
        time.sleep(0.1)
    return killed


class SandboxedKernelManager(AsyncKernelManager):
    """An (async) KernelManager whose kernel runs inside ``sandbox_prefix``, over ipc sockets in workdir."""

    def __init__(self, workdir: pathlib.Path, repo: pathlib.Path, limits: Limits = Limits(), **kwargs):
        self.sandbox_workdir = pathlib.Path(workdir)
        self.sandbox_repo = pathlib.Path(repo)
        self.sandbox_limits = limits
        super().__init__(kernel_name="python3", transport="ipc", ip=str(self.sandbox_workdir / "ipc"),
                         connection_file=str(self.sandbox_workdir / "kernel.json"), **kwargs)

    def format_kernel_cmd(self, extra_arguments=None):
        # the kernel is the course's Python, whatever kernelspec Jupyter would pick
        cmd = [sys.executable, "-m", "ipykernel_launcher", "-f", self.connection_file]
        return sandbox_prefix(self.sandbox_workdir, self.sandbox_repo, self.sandbox_limits) + cmd

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        import subprocess

        kw.setdefault("stdout", subprocess.DEVNULL)  # the kernel's start-up banner; its errors still show
        return await super()._async_launch_kernel(kernel_cmd, **kw)

    def write_connection_file(self, **kwargs):
        super().write_connection_file(**kwargs)
        if os.geteuid() == 0:  # the kernel runs as the sandbox user and must read it
            os.chown(self.connection_file, sandbox_uid(), sandbox_uid())
