"""numerics.data.load_csv_data: the user's own data set (--option data=PATH)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from numerics.data import load_csv_data
from theory.errors import IbcheckError


def _write(tmp_path, text, name="d.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_1d_and_2d_with_hash(tmp_path):
    path = _write(tmp_path, "y,x\n1,0\n2,0.5\n0,1\n")                 # column order is free
    data = load_csv_data(path)
    assert data.x.shape == (3, 1) and np.array_equal(data.x[:, 0], [0, 0.5, 1])
    assert np.array_equal(data.y, [1, 2, 0])
    assert data.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert str(path) in data.describe() and data.sha256 in data.describe()
    two = load_csv_data(_write(tmp_path, "x1,x2,y\n0,0,1\n1,0,2\n0,1,3\n", "two.csv"))
    assert two.x.shape == (3, 2) and np.array_equal(two.y, [1, 2, 3])
    assert load_csv_data(path) == data and load_csv_data(path) != two   # cache keys: path and bytes


@pytest.mark.parametrize("text, words", [
    ("", "empty"), ("a,b\n1,2\n", "header"), ("x,y\n1,2\n", "at least 2"),
    ("x,y\n1,2\n1,3\n", "repeated"), ("x,y\n1,abc\n2,3\n", "not a number"), ("x,y\n1,nan\n2,3\n", "non-finite"),
    ("x,y\n1,2,3\n2,3\n", "fields"),
])
def test_bad_files_are_one_line_errors(tmp_path, text, words):
    with pytest.raises(IbcheckError, match=words):
        load_csv_data(_write(tmp_path, text))
    with pytest.raises(IbcheckError, match="cannot read"):
        load_csv_data(tmp_path / "missing.csv")
