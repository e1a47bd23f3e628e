"""`pseudofs exec` as CMD's parent: signals sent to it reach CMD, CMD's stops and its end become
its own, and the descendants CMD leaves behind are reaped (it is their subreaper), so nothing under
the supervisor's filter lingers as a zombie.

Signals are taken through a signalfd, so the supervisor's poll loop sees them with the sender's
si_code: those the terminal sends to the whole foreground process group (SI_KERNEL, from
__kill_pgrp_info() with SEND_SIG_PRIV in kernel/signal.c) reached CMD already and are not sent a
second time.
"""

import ctypes
import ctypes.util
import os
import resource
import select
import signal
import struct

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
SFD_NONBLOCK, SFD_CLOEXEC = os.O_NONBLOCK, os.O_CLOEXEC
SI_KERNEL = 0x80
_SIGINFO = struct.Struct("=IiiII")        # ssi_signo, ssi_errno, ssi_code, ssi_pid, ssi_uid
_SIGINFO_SIZE = 128

# Signals that belong to this process (faults) or cannot be caught stay as they are; SIGPIPE
# stays ignored (a write of ours to a closed pipe must not end the supervisor).
_OWN = {signal.SIGKILL, signal.SIGSTOP, signal.SIGSEGV, signal.SIGBUS, signal.SIGILL,
        signal.SIGFPE, signal.SIGTRAP, signal.SIGSYS, signal.SIGPIPE, signal.SIGCHLD}
FORWARDED = tuple(s for s in range(1, signal.SIGRTMAX + 1)
                  if s not in _OWN and (s < 32 or s >= signal.SIGRTMIN))
TAKEN = FORWARDED + (signal.SIGCHLD,)

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def block() -> None:
    """Before fork: nothing may arrive between fork and the signalfd."""
    signal.pthread_sigmask(signal.SIG_BLOCK, TAKEN)


def default_signals() -> None:
    """Before exec: Python ignores SIGPIPE (and SIGXFSZ); an ignored signal stays ignored
    across exec, and so does the signal mask."""
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    for name in ("SIGPIPE", "SIGXFSZ"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)


def child_setup(parent: int) -> None:
    """In CMD before exec: the default mask and dispositions; killed with `pseudofs exec`
    (SIGKILL cannot be forwarded, and no trapped call may wait for a supervisor that is gone)."""
    default_signals()
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(128 + signal.SIGKILL)


def become_subreaper() -> None:
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def signalfd() -> int:
    mask = (ctypes.c_ulong * 16)()
    for s in TAKEN:
        mask[(s - 1) // 64] |= 1 << ((s - 1) % 64)
    fd = _libc.signalfd(-1, ctypes.byref(mask), SFD_NONBLOCK | SFD_CLOEXEC)
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return fd


class Child:
    """CMD seen from its parent: forwarding, reaping, its final wait status."""

    def __init__(self, pid: int, sigfd: int):
        self.pid, self.sigfd, self.status = pid, sigfd, None

    @property
    def done(self) -> bool:
        return self.status is not None

    def on_signals(self) -> None:
        """Drain the signalfd: forward what a process sent, then reap."""
        while True:
            try:
                raw = os.read(self.sigfd, _SIGINFO_SIZE)
            except BlockingIOError:
                break
            signo, _err, code, _pid, _uid = _SIGINFO.unpack_from(raw)
            if signo != signal.SIGCHLD and code != SI_KERNEL and not self.done:
                try:
                    os.kill(self.pid, signo)
                except ProcessLookupError:
                    pass
        self.reap()

    def wait(self) -> None:
        """Block until a signal comes (SIGCHLD among them), then handle it."""
        select.select([self.sigfd], [], [])
        self.on_signals()

    def reap(self) -> None:
        """Every child that changed state: CMD's stop stops us too (the shell watching
        `pseudofs exec` sees the job stop); its end is kept; adopted orphans are just reaped."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG | os.WUNTRACED)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid != self.pid:
                continue
            if os.WIFSTOPPED(status):
                os.kill(os.getpid(), signal.SIGSTOP)
                os.kill(self.pid, signal.SIGCONT)       # we were continued: so is CMD
            else:
                self.status = status


def exit_like(status: int) -> int:
    """Returns CMD's exit code, or ends this process with the signal that ended CMD."""
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    sig = os.WTERMSIG(status)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))     # CMD dumped core already, if at all
    if sig not in (signal.SIGKILL, signal.SIGSTOP):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, (sig,))
    os.kill(os.getpid(), sig)
    return 128 + sig                                     # a signal that does not end us
