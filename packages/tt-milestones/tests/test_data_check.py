"""Milestones 03 to 06 check every data file they will read before their first training step.

A full run of 03 reads MNIST after training on TinyDigits, 04 reads CIFAR-10 after LeNet, 05
reads TinyTalks after the attention proof and Tiny Shakespeare after TinyTalks, and 06 reads
MNIST and CIFAR-10: a missing or corrupt file must stop the run at the start, naming all such
files, instead of after the first part has trained. Quick runs of 03, 04 and 06 read only the
embedded TinyDigits; a quick run of 05 reads TinyTalks, and a chat with a saved checkpoint reads
nothing.
"""

import importlib
from dataclasses import replace

import pytest
import tt_core
from tt_milestones.api import RunContext
from tt_milestones.specs import CNN, MLP, OLYMPICS, TRANSFORMER

pytest.importorskip("tt_learn")
tt_data = pytest.importorskip("tt_data")

TRAINING = {"trainer", "optimizer", "dataset", "loader"}  # asked for only once work on the data begins
LAST_ACT = {MLP.id: "tt_data", CNN.id: "tt_data", TRANSFORMER.id: "tt_language", OLYMPICS.id: "tt_perf"}


class Refused(Exception):
    """Raised by the stand-in for require_data: nothing after it may have run."""


def runner(spec):
    module, _, name = spec.run.partition(":")
    return getattr(importlib.import_module(module), name)


def context(spec, tmp_path, quick, asked, require=None, options=None):
    """A run context on the loaded plugins that records every component asked for, and hands
    out ``require`` (when given) as ``function:require_data``."""
    ctx = RunContext(registry=tt_core.get_registry(), out=tmp_path, quick=quick, options=options or {},
                     declared=spec.requires + spec.optional)
    chosen = ctx.component

    def component(kind, name):
        asked.append((kind, name))
        obj = chosen(kind, name)  # also checks that the spec declares it
        return require if require is not None and (kind, name) == ("function", "require_data") else obj

    ctx.component = component
    return ctx


@pytest.mark.parametrize("spec, quick, names, options", [
    (MLP, True, ("tinydigits",), {}), (MLP, False, ("tinydigits", "mnist"), {}),
    (CNN, True, ("tinydigits",), {}), (CNN, False, ("tinydigits", "cifar10"), {}),
    (TRANSFORMER, True, ("tinytalks",), {}), (TRANSFORMER, False, ("tinytalks", "tinyshakespeare"), {}),
    (TRANSFORMER, False, ("tinytalks",), {"chat": True}),
    (OLYMPICS, True, ("tinydigits",), {}), (OLYMPICS, False, ("mnist", "cifar10"), {}),
], ids=["03-quick", "03-full", "04-quick", "04-full", "05-quick", "05-full", "05-chat-untrained", "06-quick",
        "06-full"])
def test_the_data_of_the_whole_run_is_required_first(spec, quick, names, options, tmp_path):
    pytest.importorskip(LAST_ACT[spec.id])
    asked = []

    def require(*wanted):
        raise Refused(wanted)

    with pytest.raises(Refused) as info:
        runner(spec)(context(spec, tmp_path, quick, asked, require, options))
    assert info.value.args == (names,)
    assert asked == [("function", "require_data")]  # before any data set, loader or trainer


def test_a_chat_with_a_saved_checkpoint_requires_no_data(tmp_path):
    pytest.importorskip("tt_language")
    from tt_milestones.history import m05_transformer

    (tmp_path / m05_transformer.CHECKPOINT).write_bytes(b"")
    ctx = context(TRANSFORMER, tmp_path, False, [], options={"chat": True})
    assert m05_transformer.data_needed(ctx) == ()


MNIST_FILES = {"mnist/train-images-idx3-ubyte.gz", "mnist/train-labels-idx1-ubyte.gz",
               "mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz"}
TEXT_FILES = {"tinytalks/splits/train.txt", "tinytalks/splits/val.txt", "tinytalks/splits/test.txt",
              "tinyshakespeare/input.txt"}


@pytest.mark.parametrize("spec, files", [
    (MLP, MNIST_FILES), (CNN, {"cifar10/cifar-10-python.tar.gz"}), (TRANSFORMER, TEXT_FILES),
    (OLYMPICS, MNIST_FILES | {"cifar10/cifar-10-python.tar.gz"}),
], ids=["03", "04", "05", "06"])
def test_a_full_run_without_its_data_stops_before_training_naming_every_file(spec, files, tmp_path, monkeypatch):
    pytest.importorskip(LAST_ACT[spec.id])
    monkeypatch.setenv("TT_DATA_DIR", str(tmp_path / "data"))  # empty: nothing prepared
    monkeypatch.setenv("TT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(tt_data.datasets, "MNIST_MIRRORS", ())  # and nowhere to download from
    remote, decode = tt_data.datasets.CIFAR10_SOURCES["python"]
    monkeypatch.setitem(tt_data.datasets.CIFAR10_SOURCES, "python", (replace(remote, urls=()), decode))
    if spec is TRANSFORMER:
        corpora = pytest.importorskip("tt_language.corpora")
        monkeypatch.setattr(corpora, "SHAKESPEARE", replace(corpora.SHAKESPEARE, urls=()))
        split_file = corpora.tinytalks_file
        monkeypatch.setattr(corpora, "tinytalks_file", lambda split: replace(split_file(split), urls=()))
    asked = []
    with pytest.raises(tt_data.MissingDataError) as info:
        runner(spec)(context(spec, tmp_path / "out", False, asked))
    assert set(info.value.problems) == files
    assert all(f"- {name}:" in str(info.value) for name in files)
    assert not TRAINING & {kind for kind, _ in asked}
