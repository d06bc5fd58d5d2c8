"""rnnx's one way to write outputs: single files and whole export sets, atomically.

Single files (``write_bytes``, ``write_json``, ``atomic_path``): the data goes
to a temporary file in the target folder, is flushed to disk (fsync), then
renamed over the target, so a reader sees the old file or the new one, never
half of one. Files get the mode of any new file, ``0o666 & ~umask``.

Export sets (``write_set``): several files and a manifest (e.g. ``full.onnx``,
``stream.onnx``, ``unrolled.onnx`` and ``export.json``) replaced together, so
the folder holds the complete old set or the complete new set at every
instant, even when the writer is killed (see ``write_set`` for how).

``check_writable`` proves early that a folder can be written, so a long
export fails before its validation rather than after it.

Every ``OSError`` (read-only file system, full disk, a file where a folder
should be, no permission) becomes an ``OutputError`` naming the path and the
reason, and no temporary file is left behind.

Writers in one folder coordinate with an ``flock`` on the folder's parent:
``write_set`` holds it exclusively, single-file writes share it. Programs
that write into a set's folder without this module (a text editor, DVC's
checkout) are outside that guarantee.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import secrets
import shutil
import sys
from pathlib import Path

from .errors import ConfigError, OutputError

TMP_TAG = ".rnnx-tmp-"          # in the name of every temporary file or folder this module makes
FILES_KEY = "files"             # the manifest entry write_set fills: {name: {"sha256", "bytes"}}

_REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "the path is a folder, not a file",
    errno.ENOENT: "a part of the path does not exist",
    errno.ENAMETOOLONG: "the name is too long",
    errno.EIO: "input/output error on the device",
}
# renameat2(RENAME_EXCHANGE) refused: not Linux, old kernel or glibc, a file system
# without it (EINVAL), or the folder is a mount point (EBUSY) or on another device (EXDEV).
_NO_EXCHANGE = {errno.EINVAL, errno.ENOSYS, errno.EXDEV, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBUSY}
# The parent folder refuses the sibling temp folder: fall back to writing in place.
_NO_SIBLING = {errno.EACCES, errno.EPERM, errno.EROFS, errno.EXDEV}
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def _hook(phase: str) -> None:
    """Called at each phase of a write; does nothing. Tests replace it to kill the writer there."""


def output_error(exc: OSError, path) -> OutputError:
    """An OutputError naming ``path`` and why the OS refused it (one line)."""
    reason = _REASONS.get(exc.errno, exc.strerror or str(exc))
    named = str(exc.filename or "")
    where = f" ({named})" if named and named != str(path) and TMP_TAG not in named else ""
    return OutputError(f"cannot write {str(path)!r}: {reason}{where} [errno {exc.errno}]")


def _token() -> str:
    return secrets.token_hex(6)


def _tmp_name(name: str, suffix: str = "") -> str:
    return f".{name[:180]}{TMP_TAG}{_token()}{suffix}"


# --------------------------------------------------------------------------- locks and fsync

@contextlib.contextmanager
def _locked(folder: Path, exclusive: bool):
    """flock ``folder``'s parent (shared or exclusive); no lock where the OS offers none."""
    fd = None
    try:
        import fcntl

        fd = os.open(folder.parent, _DIR_FLAGS)
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
    except (ImportError, OSError):   # no fcntl (Windows), unreadable parent, ENOLCK: unlocked
        if fd is not None:
            os.close(fd)
        fd = None
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)             # closing the descriptor releases the lock


def _fsync_dir(folder) -> None:
    try:
        fd = os.open(folder, _DIR_FLAGS)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:                  # some file systems cannot fsync a folder; the rename stands
        pass
    finally:
        os.close(fd)


def _mkdirs(folder: Path) -> None:
    if not folder.is_dir():
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except FileExistsError:      # a file where the folder should be
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder)) from None


def _create(path, data: bytes) -> None:
    """Write a new file (it must not exist) with a normal file's mode, and fsync it."""
    fd = os.open(path, _NEW_FILE_FLAGS, 0o666)    # the umask (and a default ACL) applies, as for any new file
    try:
        with os.fdopen(fd, "wb", closefd=False) as fh:
            fh.write(data)
            fh.flush()
        _hook(f"created:{os.path.basename(path)}")
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _remove_tree_quietly(path) -> None:
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except OSError:
        pass


# --------------------------------------------------------------------------- single files

def _write_in(folder: Path, name: str, data: bytes) -> Path:
    """Temp file in ``folder``, fsync, rename to ``name``, fsync the folder. Raises OSError."""
    tmp = folder / _tmp_name(name)
    try:
        _create(tmp, data)
        os.replace(tmp, folder / name)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    _fsync_dir(folder)
    return folder / name


def write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (creating its folder); returns the path.

    Raises:
        OutputError: the file or its folder cannot be written; nothing is left behind.
    """
    path = Path(path)
    try:
        _mkdirs(path.parent)
        with _locked(path.parent, exclusive=False):
            return _write_in(path.parent, path.name, bytes(data))
    except OSError as exc:
        raise output_error(exc, path) from None


def json_bytes(obj) -> bytes:
    """How rnnx writes JSON: sorted keys, two-space indent, a final newline."""
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def write_json(path, obj) -> Path:
    """Write ``obj`` as JSON (``json_bytes``) to ``path`` atomically."""
    return write_bytes(path, json_bytes(obj))


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path`` (same suffix) for writers that need a file name.

    When the block ends without an exception the file is fsynced and renamed
    to ``path``; otherwise it is removed. Example::

        with atomic_path("models/lstm.keras") as tmp:
            model.save(tmp)

    Raises:
        OutputError: the folder cannot be written, or the writer failed with a
            file-system error (full disk, read-only, no permission).
    """
    path = Path(path)
    try:
        _mkdirs(path.parent)
    except OSError as exc:
        raise output_error(exc, path) from None
    tmp = path.parent / _tmp_name(path.stem, path.suffix)
    with _locked(path.parent, exclusive=False):
        try:
            try:
                yield tmp
            except OSError as exc:
                if exc.errno in _REASONS:    # the writer hit the file system (full, read-only, ...)
                    raise output_error(exc, path) from None
                raise                        # anything else (a network error, say) is the writer's own
            if os.path.isfile(tmp):
                fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            os.replace(tmp, path)
            _fsync_dir(path.parent)
        except OSError as exc:
            raise output_error(exc, path) from None
        finally:
            if os.path.lexists(tmp):
                _remove_tree_quietly(tmp)


def check_writable(folder) -> Path:
    """Prove that ``folder`` (or, when it does not exist yet, its nearest existing parent) can be written.

    Creates, writes one byte to, and removes a temporary file there; creates no
    folder. Call it before long work whose result goes to ``folder``.

    Returns:
        ``folder`` as a Path.

    Raises:
        OutputError: a file stands where a folder is needed, or the folder is
            read-only, full or not ours to write.
    """
    folder = Path(folder)
    probe = folder
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"cannot write {str(folder)!r}: {str(probe)!r} is a file, not a folder")
    tmp = probe / _tmp_name("rnnx-probe")
    try:
        _create(tmp, b"\0")
    except OSError as exc:
        raise output_error(exc, folder) from None
    finally:
        _unlink_quietly(tmp)
    return folder


# --------------------------------------------------------------------------- export sets

def _exchange(a: Path, b: Path) -> None:
    """Swap two paths atomically: Linux renameat2(RENAME_EXCHANGE). Raises OSError (ENOSYS elsewhere)."""
    fn = None
    if sys.platform.startswith("linux"):
        try:
            fn = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
        except OSError:
            fn = None
    if fn is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available", str(a))
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(a), None, str(b))


def _check_names(files: dict, manifest_name: str) -> None:
    names = [*files, manifest_name]
    for name in names:
        if (not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\0" in name
                or os.sep in name or TMP_TAG in name):
            raise ConfigError(f"set file names must be plain file names without {TMP_TAG!r}; got {name!r}")
    if manifest_name in files:
        raise ConfigError(f"the manifest {manifest_name!r} cannot also be one of the set's files")
    for name, data in files.items():
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ConfigError(f"set file {name!r} must be bytes; got {type(data).__name__}")


def _old_members(folder: Path, manifest_name: str) -> set:
    """Names of the set the folder holds now (its manifest's ``files``), if any can be read."""
    try:
        old = json.loads((folder / manifest_name).read_bytes())
        return {n for n in old.get(FILES_KEY, {}) if isinstance(n, str)}
    except (OSError, ValueError, AttributeError):
        return set()


def _clean_leftovers(folder: Path) -> None:
    """Remove what killed writers left: sibling temp folders, temp files inside. Call under the exclusive lock."""
    prefix = f".{folder.name[:180]}{TMP_TAG}"
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder.parent):
            if entry.name.startswith(prefix):
                _remove_tree_quietly(entry.path)
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if TMP_TAG in entry.name:
                _remove_tree_quietly(entry.path)


def _copy_owner_and_mode(src: Path, dst: Path) -> None:
    st = os.stat(src)
    with contextlib.suppress(OSError):
        os.chown(dst, st.st_uid, st.st_gid)
    os.chmod(dst, st.st_mode & 0o7777)


def _link_tree(src: Path, dst: Path, skip: set) -> None:
    """Recreate ``src``'s entries (except ``skip``) in ``dst``: hard links, copied symlinks, sub-folders."""
    for entry in os.scandir(src):
        if entry.name in skip:
            continue
        target = dst / entry.name
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), target)
        elif entry.is_dir(follow_symlinks=False):
            os.mkdir(target)
            _link_tree(Path(entry.path), target, set())
            _copy_owner_and_mode(Path(entry.path), target)
        else:
            try:
                os.link(entry.path, target, follow_symlinks=False)
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.EMLINK, errno.EACCES):
                    raise
                shutil.copy2(entry.path, target, follow_symlinks=False)


def _swap_in(folder: Path, files: dict, manifest_name: str, blob: bytes, members: set) -> bool:
    """Build the new folder as a sibling and swap it in; False when this file system cannot swap."""
    with contextlib.suppress(OSError):
        if os.stat(folder).st_dev != os.stat(folder.parent).st_dev:
            return False             # a mount point: its sibling is on another device
    tmp = folder.parent / _tmp_name(folder.name)
    try:
        os.mkdir(tmp)
    except OSError as exc:
        if exc.errno in _NO_SIBLING:
            return False
        raise
    try:
        exists = os.path.lexists(folder)
        if exists:
            if not folder.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder))
            if not os.access(folder, os.W_OK):   # the swap only needs the parent: keep the folder's say
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(folder))
            _link_tree(folder, tmp, members)
        _hook("linked")
        for name, data in files.items():
            _create(tmp / name, data)
            _hook(f"file:{name}")
        _create(tmp / manifest_name, blob)
        if exists:
            _copy_owner_and_mode(folder, tmp)
        _fsync_dir(tmp)
        _hook("synced")
        if exists:
            try:
                _exchange(tmp, folder)
            except OSError as exc:
                if exc.errno in _NO_EXCHANGE:
                    return False
                raise
        else:
            os.rename(tmp, folder)
        _fsync_dir(folder.parent)
        _hook("swapped")
    finally:
        _remove_tree_quietly(tmp)   # the new tree when it failed, the old one after the swap
    _hook("old-removed")
    return True


def _replace_in_place(folder: Path, files: dict, manifest_name: str, blob: bytes, members: set) -> None:
    """Fallback: per-file temp + rename, the manifest removed first and written last."""
    _mkdirs(folder)
    temps = {}
    try:
        for name, data in {**files, manifest_name: blob}.items():
            temps[name] = folder / _tmp_name(name)
            _create(temps[name], data)
        _fsync_dir(folder)
        _hook("temps")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(folder / manifest_name)
        _fsync_dir(folder)
        _hook("manifest-removed")
        for name in files:
            os.replace(temps.pop(name), folder / name)
            _hook(f"renamed:{name}")
        for name in members - set(files) - {manifest_name}:
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                os.unlink(folder / name)
        _fsync_dir(folder)
        _hook("stale-removed")
        os.replace(temps.pop(manifest_name), folder / manifest_name)
        _fsync_dir(folder)
        _hook("manifest-written")
    finally:
        for tmp in temps.values():
            _unlink_quietly(tmp)


def write_set(folder, files: dict, manifest_name: str, manifest: dict, *, replaces=()) -> dict:
    """Replace the set of files in ``folder`` and its manifest, all at once.

    Args:
        folder: the set's folder (created when missing). A symlink is followed:
            the folder it points to is replaced.
        files: ``{file name: bytes}``, plain names (no sub-folders).
        manifest_name: the manifest's file name, e.g. ``"export.json"``.
        manifest: JSON-able mapping; written with ``"files": {name: {"sha256":
            hex digest, "bytes": size}}`` for each of ``files`` (a ``"files"``
            entry given here is replaced).
        replaces: more names that belong to the set's family (e.g. every
            variant file name): any of them not in ``files`` is removed, like
            the files the previous manifest listed.

    Returns:
        The manifest as written (with ``"files"``).

    How: the new content is built as a sibling folder
    (``.<name>.rnnx-tmp-<random>``, same file system) holding the new files,
    the manifest, and hard links to the folder's other entries (e.g. the
    quantized copies beside an export); then Linux ``renameat2(RENAME_EXCHANGE)``
    swaps the two folders in one step, and the old tree is removed. Killed at
    any point, the folder holds the complete old or the complete new set;
    leftovers (temp folders and files of killed writers) are removed by the
    next ``write_set`` into the folder. Files of the previous set that are not
    in the new one (its manifest's ``files``, and ``replaces``) do not
    survive. Concurrent ``write_set`` calls are serialised by an exclusive
    ``flock`` on the parent folder; single-file writes of this module take it
    shared.

    Fallback, where the swap is refused (not Linux, a file system without
    RENAME_EXCHANGE, the folder is a mount point, the parent is not writable):
    each file goes to a temp file first, then the old manifest is removed,
    the files are renamed into place, stale members removed, and the manifest
    written last. There a killed writer can leave the folder without a
    manifest (an incomplete set, which readers must treat as absent), but a
    manifest present always describes the files beside it.

    Raises:
        OutputError: the folder cannot be written (read-only, full disk, a file
            in the path, no permission); the old set is left as it was.
        ConfigError: a file name is not a plain name, or data is not bytes.
    """
    _check_names(files, manifest_name)
    files = {name: bytes(data) for name, data in files.items()}
    written = {k: v for k, v in dict(manifest).items() if k != FILES_KEY}
    written[FILES_KEY] = {name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
                          for name, data in sorted(files.items())}
    blob = json_bytes(written)
    folder = Path(os.path.abspath(folder))
    if folder.is_symlink():
        folder = Path(os.path.realpath(folder))
    try:
        _mkdirs(folder.parent)
        with _locked(folder, exclusive=True):
            _hook("locked")
            _clean_leftovers(folder)
            members = _old_members(folder, manifest_name) | set(replaces) | set(files) | {manifest_name}
            if not _swap_in(folder, files, manifest_name, blob, members):
                _replace_in_place(folder, files, manifest_name, blob, members)
    except OSError as exc:
        raise output_error(exc, folder) from None
    return written


def verify_set(folder, manifest_name: str) -> dict:
    """The manifest of the set in ``folder``, after checking every file's size and sha256 against it.

    Raises:
        OutputError: no readable manifest, or a file it lists is missing or differs.
    """
    from runtime.integrity import file_problem

    folder = Path(folder)
    try:
        manifest = json.loads((folder / manifest_name).read_bytes())
    except (OSError, ValueError) as exc:
        raise OutputError(f"{str(folder)!r} holds no readable {manifest_name} ({exc})") from None
    for name, entry in sorted((manifest.get(FILES_KEY) or {}).items()):
        problem = file_problem(folder / name, entry)
        if problem:
            raise OutputError(f"{str(folder)!r}: {name} is not the file {manifest_name} lists: {problem}")
    return manifest
