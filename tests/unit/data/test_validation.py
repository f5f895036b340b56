import math

import numpy as np
import pytest

from prognos.data.validation import ReadingSpec, check_values, validate_sequence
from prognos.errors import ValidationError

SPEC = ReadingSpec(("s2", "s3"), {"s2": [600.0, 700.0], "s3": [1500.0, 1700.0]}, max_readings=5)


def ok(cycle=1, **kw):
    return {"cycle": cycle, "s2": 642.0, "s3": 1580.0, **kw}


def test_valid_sequence_keeps_order_and_ignores_unused_known_fields():
    seq = validate_sequence([ok(1), ok(2, s9=9000.0)], SPEC)
    assert list(seq.cycles) == [1, 2]
    assert seq.values.shape == (2, 24)
    assert seq.values[1, 3 + 8] == 9000.0  # s9 kept as a value, not required


@pytest.mark.parametrize(
    ("readings", "needle"),
    [
        ([{"cycle": 1, "s2": 642.0}], r"sensor_data\[0\]\.s3: missing"),
        ([ok(1, s99=1.0)], r"sensor_data\[0\]\.s99: unknown field"),
        ([ok(1, s2=math.nan)], r"sensor_data\[0\]\.s2: nan is not a finite number"),
        ([ok(1, s2=math.inf)], r"sensor_data\[0\]\.s2: inf is not a finite number"),
        ([ok(1, s2="642")], r"sensor_data\[0\]\.s2: '642' is not a number"),
        ([ok(1, s2=True)], r"sensor_data\[0\]\.s2: True is not a number"),
        ([ok(1, s2=1e9)], r"sensor_data\[0\]\.s2: 1e\+09 is outside the plausible range \[600, 700\]"),
        ([], r"sensor_data: is empty"),
        ([ok(i) for i in range(1, 7)], r"6 readings exceed the limit of 5"),
        ([ok(2), ok(2)], r"sensor_data\[1\]\.cycle: 2 does not increase"),
        ([ok(1), {"s2": 642.0, "s3": 1580.0}], r"sensor_data\[1\]\.cycle: missing"),
        ([ok(1.5)], r"sensor_data\[0\]\.cycle: 1.5 is not a non-negative whole number"),
        (["x"], r"sensor_data\[0\]: expected an object"),
        ({"s2": 1}, r"sensor_data: expected a list"),
    ],
)
def test_each_bad_input_names_the_problem(readings, needle):
    with pytest.raises(ValidationError, match=needle):
        validate_sequence(readings, SPEC)


def test_check_values_on_file_rows():
    values = np.full((3, 24), np.nan)
    values[:, 4] = 642.0
    with pytest.raises(ValidationError, match=r"f\.txt, row 1: s3 missing"):
        check_values(values, SPEC, "f.txt")
    values[:, 5] = 1580.0
    values[2, 5] = 9999.0
    with pytest.raises(ValidationError, match="row 3: s3=9999 is outside"):
        check_values(values, SPEC, "f.txt")
