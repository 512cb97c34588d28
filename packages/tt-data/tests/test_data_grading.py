"""tt-data's checkers: the built-in components pass under several seeds; wrong ones fail, each
with the diagnosis that names what is wrong. Registries are built by hand."""

from __future__ import annotations

import numpy as np
import pytest
from tt_core import Tensor
from tt_core.grading import FAILED, NO_REFERENCE, PASSED, SKIPPED, grade
from tt_core.plugins import ComponentRegistry
from tt_data import grading
from tt_data.datasets import CATALOGUE
from tt_data.loader import DataLoader, TensorDataset
from tt_data.transforms import Compose, Normalize, RandomCrop, RandomHorizontalFlip

SEEDS = (0, 1, 2)
MINE = "my-data"


def grade_mine(kind: str, name: str, yours, reference, seed: int = 0):
    """Grade ``yours`` (from distribution my-data) against ``reference`` (from tt-data)."""
    registry = ComponentRegistry()
    builtin = registry.registrar("tt-data")
    grading.register(builtin)
    if reference is not None:
        builtin.register(kind, name, reference)
    builtin.commit()
    learner = registry.registrar(MINE)
    learner.register(kind, name, yours)
    learner.commit()
    component = next(c for c in registry.providers(kind, name) if c.dist == MINE)
    return grade(component, registry, seed)


def failures(result) -> dict[str, str]:
    return {case.name: case.detail for case in result.cases if case.status == FAILED}


def assert_passes(result) -> None:
    assert result.status == PASSED, failures(result)
    assert result.cases and all(case.status in (PASSED, SKIPPED) for case in result.cases)


def assert_fails(result, case_starts: str, diagnosis: str) -> None:
    """The grade failed, and a case whose name starts with ``case_starts`` failed with ``diagnosis``."""
    failed = failures(result)
    assert result.status == FAILED and failed, result.cases
    matching = {name: detail for name, detail in failed.items() if name.startswith(case_starts)}
    assert matching, f"no failed case starts with {case_starts!r}: {failed}"
    assert any(diagnosis in detail for detail in matching.values()), matching


# -- loader ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_the_data_loader_passes(seed):
    assert_passes(grade_mine("loader", "DataLoader", DataLoader, DataLoader, seed))


class SameOrderEveryEpoch(DataLoader):
    def __iter__(self):
        self.generator = np.random.default_rng(0)
        return super().__iter__()


class WithReplacement(DataLoader):
    def __iter__(self):
        n = len(self.dataset)
        order = self.generator.integers(0, n, n) if self.shuffle else np.arange(n)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            yield self._fetch(order[start:start + self.batch_size])


class IgnoresDropLast(DataLoader):
    def __init__(self, *args, drop_last=False, **kwargs):
        super().__init__(*args, **kwargs)


class FloatLabels(DataLoader):
    def _fetch(self, indices):
        x, y = super()._fetch(indices)
        return x, Tensor(y.data.astype(np.float32))


@pytest.mark.parametrize("wrong, case, diagnosis", [
    (SameOrderEveryEpoch, "shuffle=True", "two epochs came in the same order"),
    (WithReplacement, "shuffle=True", "repeated and"),
    (IgnoresDropLast, "drop_last=True", "with drop_last=True the batch sizes are"),
    (FloatLabels, "batches in order", "labels are float32, integer labels must stay integers"),
])
def test_a_wrong_loader_fails_with_its_diagnosis(wrong, case, diagnosis):
    assert_fails(grade_mine("loader", "DataLoader", wrong, DataLoader), case, diagnosis)


def test_a_loader_without_a_built_in_counterpart_is_graded_without_reference():
    result = grade_mine("loader", "MyLoader", DataLoader, None)
    assert result.status == NO_REFERENCE and not failures(result)
    assert_fails(grade_mine("loader", "MyLoader", WithReplacement, None), "shuffle=True", "repeated and")


# -- dataset_class -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_the_tensor_dataset_passes(seed):
    assert_passes(grade_mine("dataset_class", "TensorDataset", TensorDataset, TensorDataset, seed))


class Float64Dataset(TensorDataset):
    def __init__(self, *arrays):
        super().__init__(*(np.asarray(getattr(a, "data", a), dtype=np.float64) for a in arrays))


class LaxDataset(TensorDataset):
    def __init__(self, *arrays):
        self.arrays = tuple(np.asarray(getattr(a, "data", a)) for a in arrays)


@pytest.mark.parametrize("wrong, case, diagnosis", [
    (Float64Dataset, "len and ds[i]", "ds[0][0] is float64 (3, 2), expected float32 (3, 2)"),
    (LaxDataset, "arrays of different lengths", "was accepted: it must raise an error"),
])
def test_a_wrong_dataset_class_fails_with_its_diagnosis(wrong, case, diagnosis):
    assert_fails(grade_mine("dataset_class", "TensorDataset", wrong, TensorDataset), case, diagnosis)


# -- transform ---------------------------------------------------------------------------------

TRANSFORMS = {"Normalize": Normalize, "RandomCrop": RandomCrop, "RandomHorizontalFlip": RandomHorizontalFlip,
              "Compose": Compose}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", TRANSFORMS)
def test_the_transforms_pass(name, seed):
    assert_passes(grade_mine("transform", name, TRANSFORMS[name], TRANSFORMS[name], seed))


class TimesStd(Normalize):
    def __call__(self, batch):
        images = np.asarray(getattr(batch, "data", batch))
        out = (images - self.mean.reshape(1, -1, 1, 1)) * self.std.reshape(1, -1, 1, 1)
        return Tensor(out) if isinstance(batch, Tensor) else out


class Float64Normalize(Normalize):
    def __call__(self, batch):
        out = super().__call__(batch)
        return out if isinstance(out, Tensor) else out.astype(np.float64)


class CropWithoutPadding(RandomCrop):
    def __call__(self, batch):
        padding, self.padding = self.padding, 0
        try:
            return super().__call__(np.pad(np.asarray(batch), ((0, 0), (0, 0), (0, 2 * padding), (0, 2 * padding)),
                                           constant_values=1.0))
        finally:
            self.padding = padding


class UnseededCrop(RandomCrop):
    def __init__(self, size, padding=0, *, seed=None, generator=None):
        super().__init__(size, padding)  # ignores the seed


class VerticalFlip(RandomHorizontalFlip):
    def __call__(self, batch):
        images = np.asarray(batch)
        flip = self.generator.random(len(images)) < self.p
        return np.where(flip[:, None, None, None], images[:, :, ::-1], images)


@pytest.mark.parametrize("name, wrong, case, diagnosis", [
    ("Normalize", TimesStd, "the reference's values", "differs at"),
    ("Normalize", Float64Normalize, "output of a float32 batch", "output is float64"),
    ("RandomCrop", CropWithoutPadding, "every crop is a window", "is no window of its image padded by 2"),
    ("RandomCrop", UnseededCrop, "the same seed", "differs at"),
    ("RandomHorizontalFlip", VerticalFlip, "each image is mirrored", "is neither the input nor its mirror image"),
])
def test_a_wrong_transform_fails_with_its_diagnosis(name, wrong, case, diagnosis):
    assert_fails(grade_mine("transform", name, wrong, TRANSFORMS[name]), case, diagnosis)


def test_a_transform_without_an_example_is_skipped_not_failed():
    result = grade_mine("transform", "Grayscale", lambda: (lambda batch: batch), None)
    assert result.status != FAILED
    assert [(case.status, case.detail) for case in result.cases] == [
        (SKIPPED, "no example registered as example:transform:Grayscale")]


# -- dataset -----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_tinydigits_passes(seed):
    entry = CATALOGUE["tinydigits"]
    assert_passes(grade_mine("dataset", "tinydigits", entry, entry, seed))


def test_other_catalogue_entries_are_checked_without_loading():
    entry = CATALOGUE["cifar10"]
    result = grade_mine("dataset", "cifar10", entry, entry)
    assert_passes(result)
    assert [c.status for c in result.cases] == [PASSED, PASSED, PASSED, SKIPPED]
    assert "never a download" in result.cases[-1].detail


def corpus(split: str = "train", download: bool = True) -> str:
    """A text data set, as tt-language registers them."""
    return "text"


def test_a_data_set_of_another_shape_is_checked_for_its_call():
    assert_passes(grade_mine("dataset", "corpus", corpus, corpus))

    def no_split(download=True):
        return "text"

    def takes_two(split, size):
        return "text"

    assert_fails(grade_mine("dataset", "corpus", no_split, None), "called with a split",
                 "its first argument must be the split")
    assert_fails(grade_mine("dataset", "corpus", takes_two, None), "called with a split",
                 "dataset:corpus takes corpus(split, size)")
    assert_fails(grade_mine("dataset", "corpus", no_split, corpus), "takes the reference's arguments",
                 "corpus lacks the argument(s) split")


def _digits(scale: float, label_dtype=np.int64):
    from dataclasses import replace

    def read(split, download, progress):
        images, labels = CATALOGUE["tinydigits"].read(split, download, progress)
        return (images * scale).astype(np.uint8), labels.astype(label_dtype)

    return replace(CATALOGUE["tinydigits"], read=read)


@pytest.mark.parametrize("wrong, case, diagnosis", [
    (_digits(1.0, np.int32), "load_arrays('train')", "labels are int32 (1437,), expected int64 (1437,)"),
    (_digits(2.0), "load_arrays('test')", "the test images differs at"),
])
def test_a_wrong_tinydigits_fails_with_its_diagnosis(wrong, case, diagnosis):
    assert_fails(grade_mine("dataset", "tinydigits", wrong, CATALOGUE["tinydigits"]), case, diagnosis)


def test_wrong_metadata_is_caught():
    from dataclasses import replace

    wrong = replace(CATALOGUE["mnist"], classes=tuple("abcdefghij"))
    assert_fails(grade_mine("dataset", "mnist", wrong, CATALOGUE["mnist"]), "metadata", "classes is ('a'")


# -- examples ------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(grading.EXAMPLES))
def test_every_component_with_an_example_passes_its_checker(key):
    """The op and layer checkers (tt-core's) and the transform checker build and feed tt-data's
    components from these examples, and find nothing wrong with the built-in ones."""
    import tt_core

    registry = tt_core.get_registry()
    kind, name = key.split(":")
    result = grade(registry.reference(kind, name), registry, seed=0)
    assert_passes(result)
    assert not any(case.status == SKIPPED for case in result.cases), result.cases


def test_the_plugin_registers_the_checkers_and_examples():
    import tt_core

    registry = tt_core.get_registry()
    assert {"loader", "dataset_class", "transform", "dataset"} <= set(registry.names("checker"))
    assert set(grading.EXAMPLES) <= set(registry.names("example"))
