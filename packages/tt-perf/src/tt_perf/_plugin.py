"""tt-perf's plugin: registers its components. (Shared file: edit with small, targeted changes.)"""

from tt_core import hookimpl


@hookimpl
def tt_register_components(registry):
    pass
