"""tt-data's plugin: registers its components. (Shared file: edit with small, targeted changes.)"""

from tt_core import hookimpl

from . import datasets, loader, transforms

TRANSFORMS = ("Normalize", "RandomCrop", "RandomHorizontalFlip", "Compose")


def _register_data(registry):
    """Data sets, loader and transforms."""
    for name, entry in datasets.CATALOGUE.items():
        registry.register("dataset", name, entry)
    registry.register("loader", "DataLoader", loader.DataLoader)
    registry.register("dataset_class", "TensorDataset", loader.TensorDataset)
    for name in TRANSFORMS:
        registry.register("transform", name, getattr(transforms, name))


@hookimpl
def tt_register_components(registry):
    _register_data(registry)
