"""Filesystem (and TCP port) confinement with Landlock, through the three raw syscalls via ctypes.

Landlock is an unprivileged Linux security module: a process restricts itself, irreversibly, to the paths it
lists. No maintained binding exists (``py-landlock`` 0.1.1 is months old), and the ABI is three syscalls and
two packed structs, so this is ~100 lines of ctypes. Standard library only: the worker loads this module by
path before it locks down.

Every access right the running kernel knows (up to ABI 7) is handled, so anything not granted below is denied:
read-only trees get read rights (plus execute, harmless for ``.so`` loading), writable trees get every file
right. With ABI >= 4, TCP bind is denied and TCP connect is allowed only to the listed ports; with ABI >= 6,
signals and abstract unix sockets are scoped to the sandbox.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from collections.abc import Iterable

__all__ = ["landlock_abi", "restrict_self"]

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH, _RULE_NET_PORT = 1, 2

_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_REFER, _TRUNCATE, _IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_BIND_TCP, _CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1
_FILE_ONLY_RIGHTS = _EXECUTE | _WRITE_FILE | _READ_FILE | _TRUNCATE | _IOCTL_DEV


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when Landlock is unavailable or disabled."""
    result = _libc().syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return max(int(result), 0)


def _fs_rights(abi: int) -> int:
    rights = (1 << 13) - 1  # EXECUTE .. MAKE_SYM (ABI 1)
    if abi >= 2:
        rights |= _REFER
    if abi >= 3:
        rights |= _TRUNCATE
    if abi >= 5:
        rights |= _IOCTL_DEV
    return rights


def _check(result: int, what: str) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"landlock {what} failed: {os.strerror(code)}")
    return result


def restrict_self(
    *, read_paths: Iterable[str], write_paths: Iterable[str] = (), connect_ports: Iterable[int] = ()
) -> int:
    """Confine the calling process (and future children) for good; returns the ABI used.

    Missing paths are skipped (a venv without ``lib64``). Raises ``OSError`` when Landlock is unavailable, so
    the caller can fail closed.
    """
    abi = landlock_abi()
    if abi < 1:
        raise OSError(errno.ENOSYS, "Landlock is not available on this kernel")
    libc = _libc()
    fs_rights = _fs_rights(abi)
    handled_net = (_BIND_TCP | _CONNECT_TCP) if abi >= 4 else 0
    scoped = (_SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL) if abi >= 6 else 0
    attr_size = 8 if abi < 4 else 16 if abi < 6 else 24
    attr = struct.pack("=QQQ", fs_rights, handled_net, scoped)[:attr_size]
    ruleset = _check(
        libc.syscall(_CREATE_RULESET, attr, ctypes.c_size_t(attr_size), ctypes.c_uint32(0)), "create_ruleset"
    )
    try:
        read_rights = _EXECUTE | _READ_FILE | _READ_DIR
        for path, rights in [*((p, read_rights) for p in read_paths), *((p, fs_rights) for p in write_paths)]:
            _add_path_rule(libc, ruleset, path, rights)
        if handled_net:
            for port in sorted(set(connect_ports)):
                rule = struct.pack("=QQ", _CONNECT_TCP, port)
                _check(libc.syscall(_ADD_RULE, ruleset, _RULE_NET_PORT, rule, ctypes.c_uint32(0)), "add_rule(port)")
        _check(libc.prctl(38, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
        _check(libc.syscall(_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)), "restrict_self")
    finally:
        os.close(ruleset)
    return abi


def _add_path_rule(libc: ctypes.CDLL, ruleset: int, path: str, rights: int) -> None:
    try:
        descriptor = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        if not os.path.isdir(path):
            rights &= _FILE_ONLY_RIGHTS
        rule = struct.pack("=Qi", rights, descriptor)
        _check(libc.syscall(_ADD_RULE, ruleset, _RULE_PATH_BENEATH, rule, ctypes.c_uint32(0)), f"add_rule({path})")
    finally:
        os.close(descriptor)
