"""TinyTorch Act III: data sets, loaders, transforms, convolution and pooling
(Shared file: edit with small, targeted changes.)"""

from .__about__ import __version__
from .datasets import CATALOGUE, DataFormatError, ImageDataset, dataset, load_arrays
from .download import ChecksumError, DataNotFoundError, RemoteFile, fetch
from .loader import DataLoader, Dataset, TensorDataset, collate
from .transforms import Compose, Normalize, RandomCrop, RandomHorizontalFlip

__all__ = ["__version__"]
__all__ += [  # data: loading, transforms, catalogue, download
    "CATALOGUE", "ChecksumError", "Compose", "DataFormatError", "DataLoader", "DataNotFoundError", "Dataset",
    "ImageDataset", "Normalize", "RandomCrop", "RandomHorizontalFlip", "RemoteFile", "TensorDataset", "collate",
    "dataset", "fetch", "load_arrays",
]
