"""Files written whole or not at all: through a fsynced temporary file in the same folder and
os.replace, so a failure (a full disk, Ctrl-C) leaves any earlier file as it was. Checkpoints
and `trainart bench --json` write this way."""

import errno
import os
import stat
import tempfile

__all__ = ["atomic_write", "require_replaceable"]


def require_replaceable(path):
    """Refuse to replace what `path` holds unless it is a regular file that open() could write:
    os.replace would put the new file in place of a device or a FIFO (as root, save to
    /dev/null would have replaced /dev/null), and over a read-only file whose folder is
    writable, which open() and torch.save refuse."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(info.st_mode):
        raise OSError(errno.EEXIST, "the file written replaces only a regular file, and this is not one", path)
    try:
        os.close(os.open(path, os.O_WRONLY))  # the permission check open(path, "wb") makes, nothing written
    except PermissionError as exc:
        raise PermissionError(exc.errno, "cannot replace a file this user may not write", path) from None


def atomic_write(path, pieces):
    """Write the buffers `pieces` to `path` through a fsynced temporary file and os.replace,
    after require_replaceable; an error names `path` (not the temporary file)."""
    require_replaceable(path)
    try:
        _write_through_temporary(path, pieces)
    except OSError as exc:
        if exc.filename == path or exc.errno is None:
            raise
        raise type(exc)(exc.errno, exc.strerror, path) from exc  # the path asked for, not the temporary one


def _write_through_temporary(path, pieces):
    folder = os.path.dirname(os.path.abspath(path))
    mode = _file_mode(path)
    # A short temporary name: one built on `path`'s would pass the file system's name limit
    # where `path` itself does not.
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".trainart-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            _chmod(f.fileno(), tmp, mode)  # mkstemp makes it 0600
            for piece in pieces:
                f.write(piece)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    # Make the rename itself durable. Windows cannot open a folder; a failure here cannot
    # lose the file (it is already complete and in place), so it is not an error.
    try:
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def _file_mode(path):
    """The permission bits `path` should get: those of the file it replaces (a symlink's
    target), else 0o666 less the umask, as open() would create it."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode) & 0o777
    except OSError:  # no such file (or one we cannot stat): a new file
        return 0o666 & ~_umask()


def _umask():
    """The process umask. Linux shows it in /proc/self/status; elsewhere it is read by setting
    it and setting it back, which briefly changes it for every thread of the process."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _chmod(fd, tmp, mode):
    """Give the temporary file `mode`, where the file system lets us: one that refuses (a FAT
    mount, say) keeps mkstemp's 0600, which is no reason to fail the save."""
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        else:  # Windows before Python 3.13, where only the read-only bit means anything
            os.chmod(tmp, mode)
    except OSError:
        pass
