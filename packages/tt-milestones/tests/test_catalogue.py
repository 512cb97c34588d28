"""The six specs, the milestone registrar and the catalogue."""

from __future__ import annotations

import re

import pytest
from tt_core.errors import TinyTorchError
from tt_core.plugins import Component, ComponentRegistry
from tt_milestones.api import MilestoneSpec, Requirement
from tt_milestones.registry import Catalogue, MilestoneRegistrar, UnknownMilestoneError, get_catalogue
from tt_milestones.specs import MILESTONES

ACTS = ("tt-core", "tt-learn", "tt-data", "tt-language", "tt-perf")


def registry_with(*packages: str) -> ComponentRegistry:
    """A registry holding every component the six specs ask of ``packages``."""
    registry = ComponentRegistry()
    for spec in MILESTONES:
        for req in spec.requires:
            if req.package in packages and not registry.has(req.kind, req.name):
                registry.add(Component(req.kind, req.name, object(), req.package))
    return registry


def test_six_milestones_in_order():
    assert [(s.id, s.slug) for s in MILESTONES] == [
        ("01", "perceptron"), ("02", "xor"), ("03", "mlp"), ("04", "cnn"), ("05", "transformer"), ("06", "olympics")
    ]
    assert [s.year for s in MILESTONES] == sorted(s.year for s in MILESTONES)
    for spec in MILESTONES:
        assert spec.run == f"tt_milestones.history.m{spec.id}_{spec.slug}:run"
        assert spec.title and spec.target and spec.requires
        assert len(re.findall(r"[.!?](?:\s|$)", spec.history)) == 2, spec.history  # two sentences
        assert {r.package for r in spec.requires} <= set(ACTS)


@pytest.mark.parametrize(
    "installed, runnable",
    [(ACTS[:1], {"01"}), (ACTS[:2], {"01", "02"}), (ACTS[:3], {"01", "02", "03", "04"}),
     (ACTS[:4], {"01", "02", "03", "04", "05"}), (ACTS, {"01", "02", "03", "04", "05", "06"})],
)
def test_each_act_prefix_unlocks_its_milestones(installed, runnable):
    registry = registry_with(*installed)
    assert {s.id for s in MILESTONES if s.status(registry) == "runnable"} == runnable
    for spec in MILESTONES:
        if spec.id not in runnable:
            hint = spec.install_hint(registry)
            assert hint and set(hint).isdisjoint(installed)
            assert all(r.package in hint for r in spec.missing(registry))


def test_locked_milestone_names_what_is_missing():
    spec = next(s for s in MILESTONES if s.slug == "xor")
    registry = registry_with("tt-core")
    assert spec.status(registry) == "locked"
    assert "autograd:engine" in {str(r) for r in spec.missing(registry)}
    assert spec.install_hint(registry) == ["tt-learn"]


def make_spec(id_="x9", slug="nine", run="pkg.mod:run") -> MilestoneSpec:
    return MilestoneSpec(id_, slug, 2000, "A test", "One. Two.", (Requirement("op", "add", "tt-core"),), "t", run)


def test_registrar_validates_and_catalogue_adds_all_or_nothing():
    registrar = MilestoneRegistrar("dist-a")
    registrar.register(make_spec())
    with pytest.raises(TinyTorchError, match="clashes with 'x9'.*dist-a"):
        registrar.register(make_spec(id_="x8"))  # same slug
    with pytest.raises(TinyTorchError, match="package.module:function"):
        registrar.register(make_spec(id_="x7", slug="seven", run="no colon here"))
    with pytest.raises(TinyTorchError, match="MilestoneSpec"):
        registrar.register({"id": "x6"})
    catalogue = Catalogue(system=None)
    catalogue.add("dist-a", registrar.staged)
    assert catalogue.origin == {"x9": "dist-a"}
    with pytest.raises(TinyTorchError, match="clashes with 'x9' \\(nine\\) registered by dist-a"):
        catalogue.add("dist-b", [make_spec(id_="x5", slug="five"), make_spec(slug="other")])  # second: same id
    assert list(catalogue.specs) == ["x9"]


def test_find_by_id_number_or_slug_and_unknown_lists_valid_ids(only_core):
    catalogue = get_catalogue()
    assert catalogue.find("01") is catalogue.find("1") is catalogue.find("Perceptron")
    with pytest.raises(UnknownMilestoneError) as error:
        catalogue.find("alexnet")
    message = str(error.value)
    assert "alexnet" in message and all(f"{s.id} ({s.slug})" in message for s in MILESTONES)


def test_catalogue_is_rebuilt_after_reset(only_core):
    import tt_core

    first = get_catalogue()
    assert get_catalogue() is first
    tt_core.reset_plugins()
    assert get_catalogue() is not first
    assert [s.id for s in get_catalogue().all()] == [s.id for s in MILESTONES]
