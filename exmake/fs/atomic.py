"""Atomic file operations: nothing appears under its final name half-done.

Every write goes to a temporary name in the same directory, is flushed to
disk, and is renamed into place; a kill at any instant leaves either the old
file or the new one, never a torn one.

Files are created with the mode an ordinary `open()` would give them (0666,
or 0777 for scripts, less the umask): a team shares a workdir by setting its
umask, and job records written 0600 (as `tempfile.mkstemp` makes them) could
be read by nobody else.
"""

import json
import os
import secrets

FILE_MODE = 0o666    # before the umask, as open(2) and the shell create files
SCRIPT_MODE = 0o777  # the same for executables
_TMP_TRIES = 100     # random temporary names that may collide before giving up


def _create_temporary(directory, name, mode):
    """(fd, path) of a new file beside `name`; the kernel applies the umask to `mode`."""
    for _ in range(_TMP_TRIES):
        tmp = os.path.join(directory, f".tmp-{secrets.token_hex(4)}-{name}")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{directory}: no free temporary name for {name}")


def write_bytes(path, data, fsync=True, mode=FILE_MODE):
    """Write `data` to `path` atomically, as a file of `mode` less the umask."""
    directory = os.path.dirname(path) or "."
    fd, tmp = _create_temporary(directory, os.path.basename(path), mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        unlink_quietly(tmp)
        raise


def write_json(path, obj, fsync=True):
    """Write `obj` as key-sorted JSON atomically: a dict one key per line
    (readable with cat), each value compact. (json's `indent` would take its
    pure-Python encoder, a measured third of a small job's record-writing time.)"""
    write_bytes(path, dumps_lines(obj).encode(), fsync)


def dumps_lines(obj):
    """`obj` as JSON text, a dict's top-level keys one per line."""
    if not isinstance(obj, dict) or not obj:
        return json.dumps(obj, sort_keys=True) + "\n"
    items = (f"  {json.dumps(str(k))}: {json.dumps(v, sort_keys=True)}" for k, v in sorted(obj.items()))
    return "{\n" + ",\n".join(items) + "\n}\n"


def read_json(path):
    """The JSON object at `path`, or None if it is missing or unreadable."""
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except (OSError, ValueError, RecursionError):  # RecursionError: nesting deeper than json reads
        return None


def symlink(target, link_path):
    """Point `link_path` at `target` atomically (make a new link, rename it over)."""
    directory = os.path.dirname(link_path) or "."
    tmp = os.path.join(directory, f".tmp-link-{os.getpid()}-{os.path.basename(link_path)}")
    try:
        os.symlink(target, tmp)
    except FileExistsError:  # left by a killed process that had our pid
        unlink_quietly(tmp)
        os.symlink(target, tmp)
    try:
        os.replace(tmp, link_path)
    except BaseException:
        unlink_quietly(tmp)
        raise


def fsync_dir(path):
    """Flush a directory's entries (a rename is durable only after this)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unlink_quietly(path):
    """Remove `path` if it is there."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
