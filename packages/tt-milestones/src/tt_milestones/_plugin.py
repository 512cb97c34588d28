"""tt-milestones' own plugin: it contributes the six historical milestones through the same
hook as any third-party package."""

from tt_core import hookimpl

from .specs import MILESTONES


@hookimpl
def tt_register_milestones(registry):
    for spec in MILESTONES:
        registry.register(spec)
