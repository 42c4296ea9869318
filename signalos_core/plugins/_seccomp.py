"""A seccomp-BPF syscall filter for plugin workers, built by hand and installed with ``prctl`` via ctypes.

Why not a binding: ``pyseccomp`` (0.1.2, 2021) is unmaintained and calls ``ctypes.util.find_library`` at
import, which spawns tools and breaks after Landlock (trap 1 of the reference); Debian's ``python3-seccomp``
only binds the system interpreter. The filter needed here is a short deny list, which classic BPF expresses in
~100 instructions with no dependency at all. This module imports only the standard library because the worker
loads it by path before locking down.

Policy (x86-64): a non-native architecture or an x32 syscall kills the process; the calls below fail with
``EPERM`` (Python raises ``PermissionError``, so the plugin author sees a clear error); everything else is
allowed. Denied: exec (``execve``, ``execveat``), new processes (``fork``, ``vfork``, ``clone`` without
``CLONE_THREAD``; ``clone3`` answers ``ENOSYS`` so glibc falls back to ``clone`` for threads), signalling other
processes (``kill``, ``tkill``, ``tgkill`` to another pid, pidfd calls), ``ptrace`` and cross-process memory,
namespaces and mounts, raising resource limits (``setrlimit``; ``prlimit64`` only as a getter), kernel
keyrings, BPF, perf, modules, reboot, clocks, ``io_uring`` (it bypasses seccomp for I/O), file handles
(``open_by_handle_at`` escapes bind mounts as root), device nodes. Without a network permission every socket
call is denied; with one, only ``AF_INET``/``AF_INET6`` sockets that are not ``SOCK_RAW``.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct

__all__ = ["SECCOMP_SUPPORTED", "apply_filter", "build_filter"]

SECCOMP_SUPPORTED = platform.machine() == "x86_64"

_AUDIT_ARCH_X86_64 = 0xC000003E
_X32_SYSCALL_BIT = 0x40000000
_CLONE_THREAD = 0x00010000
_AF_INET, _AF_INET6, _SOCK_RAW, _SOCK_TYPE_MASK = 2, 10, 3, 0xF

_RET_KILL_PROCESS = 0x80000000
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_DENY = _RET_ERRNO | errno.EPERM
_ENOSYS = _RET_ERRNO | errno.ENOSYS

# classic BPF opcodes
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_AND_K = 0x54
_RET_K = 0x06

# offsets in struct seccomp_data (little-endian x86-64)
_NR, _ARCH = 0, 4


def _arg_low(index: int) -> int:
    return 16 + 8 * index


def _arg_high(index: int) -> int:
    return 16 + 8 * index + 4


# x86-64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl)
_ALWAYS_DENIED = {
    "execve": 59,
    "execveat": 322,
    "fork": 57,
    "vfork": 58,
    "ptrace": 101,
    "kill": 62,
    "tkill": 200,
    "unshare": 272,
    "setns": 308,
    "mount": 165,
    "umount2": 166,
    "pivot_root": 155,
    "chroot": 161,
    "setrlimit": 160,
    "bpf": 321,
    "perf_event_open": 298,
    "keyctl": 250,
    "add_key": 248,
    "request_key": 249,
    "init_module": 175,
    "finit_module": 313,
    "delete_module": 176,
    "kexec_load": 246,
    "kexec_file_load": 320,
    "reboot": 169,
    "swapon": 167,
    "swapoff": 168,
    "mknod": 133,
    "mknodat": 259,
    "iopl": 172,
    "ioperm": 173,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "userfaultfd": 323,
    "open_by_handle_at": 304,
    "name_to_handle_at": 303,
    "pidfd_open": 434,
    "pidfd_send_signal": 424,
    "pidfd_getfd": 438,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "personality": 135,
    "syslog": 103,
    "acct": 163,
    "settimeofday": 164,
    "clock_settime": 227,
    "adjtimex": 159,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "mount_setattr": 442,
    "vhangup": 153,
    "quotactl": 179,
}
_NETWORK = {"socket": 41, "socketpair": 53, "connect": 42, "bind": 49, "listen": 50, "accept": 43, "accept4": 288}
_CLONE, _CLONE3, _TGKILL, _PRLIMIT64, _SOCKET = 56, 435, 234, 302, 41


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def _load(offset: int) -> bytes:
    return _insn(_LD_W_ABS, offset)


def _ret(value: int) -> bytes:
    return _insn(_RET_K, value)


def _rule(number: int, body: list[bytes]) -> list[bytes]:
    """``if nr == number: <body>`` where ``body`` always returns; the next rule reloads ``nr``."""
    return [_load(_NR), _insn(_JEQ_K, number, 0, len(body)), *body]


def build_filter(*, allow_network: bool, own_pid: int) -> bytes:
    """The filter program as packed ``struct sock_filter`` instructions."""
    program = [
        _load(_ARCH),
        _insn(_JEQ_K, _AUDIT_ARCH_X86_64, 1, 0),
        _ret(_RET_KILL_PROCESS),
        _load(_NR),
        _insn(_JGE_K, _X32_SYSCALL_BIT, 0, 1),
        _ret(_RET_KILL_PROCESS),
    ]
    denied = dict(_ALWAYS_DENIED)
    if not allow_network:
        denied.update(_NETWORK)
    for number in sorted(denied.values()):
        program += _rule(number, [_ret(_DENY)])
    # clone: threads only (CLONE_THREAD set in the flags, argument 0).
    program += _rule(_CLONE, [_load(_arg_low(0)), _insn(_JSET_K, _CLONE_THREAD, 0, 1), _ret(_RET_ALLOW), _ret(_DENY)])
    program += _rule(_CLONE3, [_ret(_ENOSYS)])
    # tgkill: only to this process (Python's signal.raise_signal / abort()).
    program += _rule(_TGKILL, [_load(_arg_low(0)), _insn(_JEQ_K, own_pid, 0, 1), _ret(_RET_ALLOW), _ret(_DENY)])
    # prlimit64 as a getter only: new_limit (argument 2) must be NULL.
    program += _rule(
        _PRLIMIT64,
        [
            _load(_arg_low(2)),
            _insn(_JEQ_K, 0, 0, 3),
            _load(_arg_high(2)),
            _insn(_JEQ_K, 0, 0, 1),
            _ret(_RET_ALLOW),
            _ret(_DENY),
        ],
    )
    if allow_network:
        program += _rule(
            _SOCKET,
            [
                _load(_arg_low(0)),
                _insn(_JEQ_K, _AF_INET, 1, 0),
                _insn(_JEQ_K, _AF_INET6, 0, 4),
                _load(_arg_low(1)),
                _insn(_AND_K, _SOCK_TYPE_MASK),
                _insn(_JEQ_K, _SOCK_RAW, 1, 0),
                _ret(_RET_ALLOW),
                _ret(_DENY),
            ],
        )
    program.append(_ret(_RET_ALLOW))
    return b"".join(program)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2


def apply_filter(*, allow_network: bool) -> None:
    """Install the filter on the calling process (irreversible). Raises ``OSError`` if the kernel refuses."""
    if not SECCOMP_SUPPORTED:
        raise OSError(errno.ENOSYS, f"seccomp filter not available on {platform.machine()}")
    program = build_filter(allow_network=allow_network, own_pid=os.getpid())
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")
