"""TinyTorch Act III: data sets, loaders, transforms, convolution and pooling."""

from .__about__ import __version__
from .datasets import CATALOGUE, ImageDataset, MissingDataError, UnknownDatasetError, dataset, load_arrays, require
from .download import (
    ChecksumError,
    DataError,
    DataFormatError,
    DataNotFoundError,
    RemoteFile,
    UnsafePathError,
    extract,
    fetch,
)
from .layers import AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, Flatten, MaxPool2d
from .loader import DataLoader, Dataset, LoaderError, TensorDataset, collate
from .norm import batch_norm
from .spatial import adaptive_avg_pool2d, avg_pool2d, conv2d, conv2d_reference, max_pool2d
from .transforms import Compose, Normalize, RandomCrop, RandomHorizontalFlip

__all__ = ["__version__"]
__all__ += [  # data: loading, transforms, catalogue, download, checks
    "CATALOGUE", "ChecksumError", "Compose", "DataError", "DataFormatError", "DataLoader", "DataNotFoundError",
    "Dataset", "ImageDataset", "LoaderError", "MissingDataError", "Normalize", "RandomCrop", "RandomHorizontalFlip",
    "RemoteFile", "TensorDataset", "UnknownDatasetError", "UnsafePathError", "collate", "dataset", "extract",
    "fetch", "load_arrays", "require",
]
__all__ += [  # space: convolution, pooling, batch norm
    "AdaptiveAvgPool2d", "AvgPool2d", "BatchNorm2d", "Conv2d", "Flatten", "MaxPool2d", "adaptive_avg_pool2d",
    "avg_pool2d", "batch_norm", "conv2d", "conv2d_reference", "max_pool2d",
]
