"""Single-file data sets (dlx/data/fetch.py): a corrupt copy in the data directory is one
`error:` line naming the file, before anything runs."""

from __future__ import annotations

import pytest
from conftest import assert_one_error_line


@pytest.mark.parametrize("name,file,content,experiment", [
    ("tinyshakespeare", "input.txt", "First Citizen:\nBefore we proceed any further...\n",
     "scaling"),
    ("california_housing", "housing.csv", "longitude,latitude\n-122.23,37.88\n", "house_prices"),
])
def test_a_corrupt_copy_is_one_error_line(cli, tmp_path, name, file, content, experiment):
    folder = tmp_path / "data" / name
    folder.mkdir(parents=True)
    (folder / file).write_text(content)
    cli.env["DLX_DATA_DIR"] = str(tmp_path / "data")
    assert_one_error_line(cli("run", f"experiment={experiment}"), "checksum mismatch",
                          str(folder / file))
