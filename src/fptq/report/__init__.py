"""Writing results: tables (`fptq.report.tables`) and files replaced atomically."""


def write_text_atomic(path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it into place: readers never see half a file."""
    import os
    import tempfile
    from pathlib import Path

    fd, tmp = tempfile.mkstemp(prefix=f".{Path(path).name}.", suffix=".tmp", dir=Path(path).parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
