"""The hook implementations TinyTorch finds through the ``tinytorch`` entry point."""

from tt_core import hookimpl

from .layers import Swish


@hookimpl
def tt_register_components(registry):
    registry.register("layer", "Swish", Swish)


@hookimpl
def tt_register_milestones(registry):
    # Only tt-milestones calls this hook, so importing it here keeps it an optional dependency.
    from tt_milestones.api import MilestoneSpec, Requirement

    registry.register(
        MilestoneSpec(
            id="x1",
            slug="swish",
            year=2017,
            title="Searching for Activation Functions",
            history=(
                "Ramachandran, Zoph and Le let an automated search try thousands of activation functions, "
                "and the winner was x * sigmoid(x), which they named Swish. Unlike ReLU it is smooth and "
                "dips below zero before it rises, bottoming out at x = -1 - W(1/e)."
            ),
            requires=(
                Requirement("layer", "Swish", "tt-plugin-example"),
                Requirement("activation", "ReLU", "tt-core"),
            ),
            target="Swish's minimum, found on a grid, within 1e-4 of the closed form -W(1/e) = -0.278465",
            run="tt_plugin_example.milestone:run",
        )
    )
