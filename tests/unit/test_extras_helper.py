"""The helper every extras test imports through: skip where an extra is missing, fail where CI says
it is installed."""
import pytest
from _pytest.outcomes import Failed, Skipped
from extras import REQUIRE, need


def test_present_module_is_returned():
    assert need("json", "export").dumps([1]) == "[1]"


def test_missing_module_skips_with_the_install_command(monkeypatch):
    monkeypatch.delenv(REQUIRE, raising=False)
    with pytest.raises(Skipped, match=r"pip install -e '\.\[export\]'"):
        need("no_such_module_xyz", "export")


@pytest.mark.parametrize("value", ["all", "mpi,export", " export "])
def test_missing_module_fails_where_required(monkeypatch, value):
    monkeypatch.setenv(REQUIRE, value)
    with pytest.raises(Failed, match="no_such_module_xyz"):
        need("no_such_module_xyz", "export")


def test_other_extras_required_still_skip(monkeypatch):
    monkeypatch.setenv(REQUIRE, "mpi")
    with pytest.raises(Skipped):
        need("no_such_module_xyz", "export")
