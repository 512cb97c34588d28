"""Each milestone's spec requires every component its run function asks for.

Otherwise ``tt-milestones list`` could show a milestone runnable that then fails for want of a
component. ``RunContext.component`` refuses undeclared components at run time; this test
reads the runners' source so that even the long (non-quick) code paths are covered.
"""

import re
from pathlib import Path

import pytest
from tt_milestones.api import Requirement, RunContext
from tt_milestones.specs import MILESTONES

from tt_core.errors import TinyTorchError
from tt_core.plugins import ComponentRegistry

HISTORY = Path(__file__).resolve().parents[1] / "src" / "tt_milestones" / "history"
CALL = re.compile(r"""component\(\s*["'](\w+)["']\s*,\s*["'](\w+)["']\s*\)""")


@pytest.mark.parametrize("spec", MILESTONES, ids=lambda s: s.id)
def test_spec_requires_every_component_its_runner_uses(spec):
    module = spec.run.partition(":")[0].rsplit(".", 1)[1]
    source = (HISTORY / f"{module}.py").read_text()
    # a runner that builds on another milestone's code (``from . import m03_mlp``) uses its components too
    for sibling in re.findall(r"from \. import ([\w, ]+)", source):
        source += "".join((HISTORY / f"{name.strip()}.py").read_text() for name in sibling.split(","))
    used = set(CALL.findall(source))
    assert used, f"{module}.py asks for no component through ctx.component"
    declared = {(r.kind, r.name) for r in spec.requires + spec.optional}
    assert used <= declared, f"milestone {spec.id} uses undeclared components: {sorted(used - declared)}"


def test_run_context_refuses_an_undeclared_component():
    registry = ComponentRegistry()
    registrar = registry.registrar("tt-core")
    registrar.register("layer", "Linear", object)
    registrar.register("layer", "Conv2d", object)
    registrar.commit()
    ctx = RunContext(registry=registry, out=Path("."), declared=(Requirement("layer", "Linear", "tt-core"),))
    assert ctx.component("layer", "Linear") is object
    with pytest.raises(TinyTorchError, match=r"uses layer:Conv2d, which its spec does not declare"):
        ctx.component("layer", "Conv2d")
