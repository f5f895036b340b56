import io
import zipfile

import numpy as np
import pytest

from prognos.data.cmapss import load_readings, load_rul, load_subset, parse_readings_text, subset_name
from prognos.errors import DataFormatError
from tests.helpers import cmapss_text, write_cmapss_dir

ROW = "1 {c} -0.0007 -0.0004 100.0 518.67 641.82 1589.70 1400.60 14.62 21.61 554.36 2388.06 9046.19 1.30 47.47 " \
      "521.66 2388.02 8138.62 8.4195 0.03 392 2388 100.00 39.06 23.4190"


def test_parses_nasa_layout_with_trailing_spaces():
    r = parse_readings_text(ROW.format(c=1) + "  \n" + ROW.format(c=2) + " \n", "f.txt")
    assert len(r) == 2 and r.n_engines == 1
    assert r.values.shape == (2, 24)
    assert r.values[0, 3] == pytest.approx(518.67)  # s1 follows the three settings
    assert list(r.cycles) == [1, 2]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (ROW.format(c=1) + "\n" + " ".join(ROW.format(c=2).split()[:20]) + "\n", "line 2: expected 26 columns"),
        (ROW.format(c=1).replace("641.82", "abc"), "line 1, column s2: 'abc' is not a number"),
        (ROW.format(c=3) + "\n" + ROW.format(c=2), "line 2: engine 1 cycle 2 does not increase"),
        (ROW.format(c=1).replace("641.82", "nan"), "line 1, column s2: value is not finite"),
        ("\n\n", "file is empty"),
    ],
)
def test_malformed_rows_name_file_and_line(text, needle):
    with pytest.raises(DataFormatError, match=needle.replace("(", r"\(")) as exc:
        parse_readings_text(text, "train_FD001.txt")
    assert "train_FD001.txt" in str(exc.value)


def test_engines_must_be_contiguous():
    other = ROW.format(c=1).replace("1 1 ", "2 1 ", 1)
    with pytest.raises(DataFormatError, match="line 3: rows of engine 1 are not contiguous"):
        parse_readings_text("\n".join([ROW.format(c=1), other, ROW.format(c=5)]), "x")


def test_csv_with_header_and_string_ids():
    text = "engine_id,cycle,s2,s3\nENG-7,1,642.1,1580\nENG-7,2,642.3,1581\nENG-8,1,641.9,1579\n"
    r = parse_readings_text(text, "in.csv")
    assert [e.engine_id for e in r.engines()] == ["ENG-7", "ENG-8"]
    assert np.isnan(r.values[0, 3])  # s1 absent -> NaN, rejected later only if a model needs it
    with pytest.raises(DataFormatError, match="line 1: unknown column 'bogus'"):
        parse_readings_text("engine_id,cycle,bogus\n1,1,2\n", "in.csv")
    with pytest.raises(DataFormatError, match="line 3, column s2: 'x' is not a number"):
        parse_readings_text("unit,cycle,s2\n1,1,3\n1,2,x\n", "in.csv")


def test_subset_names():
    assert subset_name("fd002") == "FD002" and subset_name("3") == "FD003"
    with pytest.raises(DataFormatError, match="unknown subset 'FD009'"):
        subset_name("FD009")


def test_loads_folder_and_nested_zip_alike(tmp_path):
    root = write_cmapss_dir(tmp_path / "d", n_train=5, n_test=4)
    from_dir = load_subset(root, "FD001")
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        for f in root.iterdir():
            z.write(f, f"CMAPSSData/{f.name}")
    outer = tmp_path / "nasa.zip"
    with zipfile.ZipFile(outer, "w") as z:
        z.writestr("6. Turbofan/CMAPSSData.zip", inner.getvalue())
    from_zip = load_subset(outer, "FD001")
    assert from_zip.train.n_engines == from_dir.train.n_engines == 5
    np.testing.assert_array_equal(from_zip.test.values, from_dir.test.values)
    np.testing.assert_array_equal(from_zip.rul, from_dir.rul)


def test_rul_length_must_match_test_engines(tmp_path):
    root = write_cmapss_dir(tmp_path / "d", n_train=5, n_test=4)
    (root / "RUL_FD001.txt").write_text("10\n20\n")
    with pytest.raises(DataFormatError, match="has 2 RUL values but the test file has 4 engines"):
        load_subset(root, "FD001")
    other = tmp_path / "other_rul.txt"
    other.write_text("1\n2\n3\n4\n")
    assert list(load_subset(root, "FD001", rul_file=other).rul) == [1, 2, 3, 4]
    with pytest.raises(DataFormatError, match="line 2: 'x' is not a number"):
        load_rul(other.with_name("bad.txt") if other.with_name("bad.txt").write_text("1\nx\n") else other)


def test_missing_paths(tmp_path):
    with pytest.raises(DataFormatError, match="no such directory"):
        load_subset(tmp_path / "nope", "FD001")
    with pytest.raises(DataFormatError, match=r"train_FD002\.txt not found"):
        load_subset(write_cmapss_dir(tmp_path / "d", n_train=3, n_test=2), "FD002")
    with pytest.raises(DataFormatError, match="no such file"):
        load_readings(tmp_path / "missing.txt")


def test_roundtrip_text(synthetic_readings):
    back = parse_readings_text(cmapss_text(synthetic_readings), "s")
    assert back.n_engines == synthetic_readings.n_engines
    np.testing.assert_allclose(back.values, synthetic_readings.values, atol=1e-4)


def test_real_files_load(cmapss):
    s = load_subset(cmapss, "FD001")
    assert (s.train.n_engines, s.test.n_engines, len(s.rul)) == (100, 100, 100)
