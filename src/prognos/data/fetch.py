"""``prognos data fetch``: download the C-MAPSS archive and unpack its text files."""

from __future__ import annotations

import io
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from prognos.errors import DataFormatError

__all__ = ["DEFAULT_CMAPSS_URL", "fetch_cmapss"]

#: NASA's Prognostics Data Repository archive (a zip holding CMAPSSData.zip).
DEFAULT_CMAPSS_URL = "https://phm-datasets.s3.amazonaws.com/NASA/6.+Turbofan+Engine+Degradation+Simulation+Data+Set.zip"


def _extract(zf: zipfile.ZipFile, to: Path, depth: int, written: list[str]) -> None:
    for info in zf.infolist():
        base = info.filename.rsplit("/", 1)[-1]
        if base.lower().endswith(".zip") and depth < 3:
            with zipfile.ZipFile(io.BytesIO(zf.read(info))) as inner:
                _extract(inner, to, depth + 1, written)
        elif base.endswith(".txt") and base and not base.startswith("."):
            (to / base).write_bytes(zf.read(info))
            written.append(base)


def fetch_cmapss(url: str, to: Path, timeout_s: float = 60.0) -> list[str]:
    """Download ``url`` (http(s) or file://) and unpack every .txt file, through nested zips, into
    ``to``. Returns the names written. Nothing is left half-written: files land only after the
    archive was read completely."""
    to = Path(to)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "cmapss.zip"
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as resp, open(archive, "wb") as f:
                shutil.copyfileobj(resp, f)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise DataFormatError(f"{url}: download failed ({getattr(exc, 'reason', exc)})") from None
        if not zipfile.is_zipfile(archive):
            raise DataFormatError(f"{url}: not a zip archive")
        staging = Path(tmp) / "out"
        staging.mkdir()
        written: list[str] = []
        with zipfile.ZipFile(archive) as zf:
            _extract(zf, staging, 0, written)
        if not any(n.startswith("train_FD") for n in written):
            raise DataFormatError(f"{url}: archive holds no train_FD00x.txt files")
        to.mkdir(parents=True, exist_ok=True)
        for name in written:
            shutil.move(str(staging / name), to / name)
    return sorted(set(written))
