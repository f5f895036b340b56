import io
import zipfile

import pytest

from prognos.data.fetch import fetch_cmapss
from prognos.errors import DataFormatError
from tests.helpers import write_cmapss_dir


def test_fetch_unpacks_nested_zip_from_file_url(tmp_path):
    src = write_cmapss_dir(tmp_path / "src", n_train=3, n_test=2)
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        for f in src.iterdir():
            z.write(f, f.name)
    archive = tmp_path / "archive.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("Turbofan/CMAPSSData.zip", inner.getvalue())
    names = fetch_cmapss(archive.as_uri(), tmp_path / "out")
    assert names == sorted(p.name for p in src.iterdir())
    assert (tmp_path / "out" / "train_FD001.txt").read_text() == (src / "train_FD001.txt").read_text()


def test_fetch_errors(tmp_path):
    with pytest.raises(DataFormatError, match="download failed"):
        fetch_cmapss((tmp_path / "missing.zip").as_uri(), tmp_path / "out")
    notzip = tmp_path / "a.zip"
    notzip.write_text("hello")
    with pytest.raises(DataFormatError, match="not a zip archive"):
        fetch_cmapss(notzip.as_uri(), tmp_path / "out")
    assert not (tmp_path / "out").exists()
