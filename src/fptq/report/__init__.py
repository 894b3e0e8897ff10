"""Writing results: tables (`fptq.report.tables`) and files replaced atomically."""


def umask() -> int:
    """The process's umask (read by setting it and back: there is no other way to read it)."""
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it into place: readers never see half a file. The
    file gets the permissions the umask gives new files (the temporary file's are private)."""
    import os
    import tempfile
    from pathlib import Path

    fd, tmp = tempfile.mkstemp(prefix=f".{Path(path).name}.", suffix=".tmp", dir=Path(path).parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
