"""tt-data's plugin: registers its components, and the checkers and examples that grade them."""

from tt_core import hookimpl

from . import datasets, layers, loader, norm, spatial, transforms

TRANSFORMS = ("Normalize", "RandomCrop", "RandomHorizontalFlip", "Compose")


def _register_data(registry):
    """Data sets, the check of their files, loader and transforms."""
    for name, entry in datasets.CATALOGUE.items():
        registry.register("dataset", name, entry)
    registry.register("loader", "DataLoader", loader.DataLoader)
    registry.register("dataset_class", "TensorDataset", loader.TensorDataset)
    registry.register("function", "require_data", datasets.require)
    for name in TRANSFORMS:
        registry.register("transform", name, getattr(transforms, name))


def _register_spatial(registry):
    """Convolution, pooling and batch norm: ops with their gradient rules, and the layers."""
    for name, op in {**spatial.OPS, **norm.OPS}.items():
        registry.register("op", name, op)
    for name in layers.__all__:
        registry.register("layer", name, getattr(layers, name))


@hookimpl
def tt_register_components(registry):
    _register_data(registry)
    _register_spatial(registry)
    _register_checkers(registry)


def _register_checkers(registry):
    """The checkers of the loader, dataset_class, transform and dataset kinds, and the examples
    that build and feed tt-data's layers and transforms (see :mod:`tt_data.grading`)."""
    from . import grading

    grading.register(registry)
