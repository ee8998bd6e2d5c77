"""The environment variables the README documents: each value means what it says, a value the library
does not know is refused naming the variable (never a silent default), and the command line refuses
it before it does any work (exit 2)."""
import pytest

from tinygrad_s2s.backend import allocator, blas_threads, compiled, envvars
from tinygrad_s2s.cli import check_environment, main


@pytest.mark.parametrize("value, on", [("", True), ("1", True), ("ON", True), (" yes ", True), ("true", True),
                                       ("0", False), ("off", False), ("No", False), ("FALSE", False)])
def test_on_off_variables_take_the_usual_spellings(monkeypatch, value, on):
    monkeypatch.setenv(allocator.ENV_VAR, value)
    assert allocator.enabled_by_environment() is on
    monkeypatch.setenv(envvars.DEBUG, value)
    assert envvars.flag(envvars.DEBUG, False) is (on and value != "")


@pytest.mark.parametrize("name, value, words", [
    (allocator.ENV_VAR, "disable", "use one of 1, true, yes, on, 0, false, no, off"),   # was: left on
    (envvars.DEBUG, "maybe", "use one of 1, true"),
    (blas_threads.ENV_VAR, "1", "use 'auto' or 'fixed' ('fixed' is the default)"),     # was: an op's error mid-run
    (compiled.ENV_VAR, "numba", "use one of 1, true, yes, on, 0, false, no, off"),
])
def test_a_value_the_library_does_not_know_is_refused_before_any_work(monkeypatch, capsys, tmp_path, name, value,
                                                                       words):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=f"environment variable {name}={value!r}: {words}".replace("(", r"\(")
                       .replace(")", r"\)")):
        check_environment()
    assert main(["train", "seq2seq", "--dataset", "addition", "--out", str(tmp_path / "run")]) == 2
    assert f"tinygrad-s2s: error: environment variable {name}" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_debug_false_means_off(monkeypatch, capsys):
    monkeypatch.setenv(envvars.DEBUG, "false")       # was: any value but '' or '0' turned tracebacks on
    assert main(["eval", "no/such/run"]) == 1
    assert "Traceback" not in capsys.readouterr().err
