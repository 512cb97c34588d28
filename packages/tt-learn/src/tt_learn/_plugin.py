"""tt-learn's plugin: the autograd engine, a gradient rule per tt-core primitive, losses,
optimizers, schedulers and metrics. (Shared file: edit with small, targeted changes.)"""

from tt_core import hookimpl


@hookimpl
def tt_register_components(registry):
    pass
