"""Milestone 04: convolutional networks (LeCun et al., 1998).

(Work in progress: the network builders first.)
"""

from __future__ import annotations

from types import SimpleNamespace

CIFAR_WIDTHS = (32, 64, 128, 256)


def cifar_net(nn: SimpleNamespace, widths: tuple[int, int, int, int] = CIFAR_WIDTHS, classes: int = 10):
    """The CIFAR-10 network: seven 3x3 convolutions, each followed by batch norm and ReLU.

    ``nn`` names the layer classes (``Conv2d``, ``MaxPool2d``, ``BatchNorm2d``, ``ReLU``,
    ``Flatten``, ``Linear``, ``Sequential``) with PyTorch's signatures, so the same function
    builds the TinyTorch model and, for the benchmark, the PyTorch one (``nn=torch.nn``).

    Resolution halves after the stem and after the first convolution of each stage
    (32 -> 16 -> 8 -> 4 -> 2 -> 1), pooling *before* batch norm so that the normalisation
    runs on four times fewer pixels. Convolutions carry no bias (batch norm's shift does it).
    """

    def conv_bn(cin: int, cout: int, pool: bool) -> list:
        layers = [nn.Conv2d(cin, cout, 3, padding=1, bias=False)]
        if pool:
            layers.append(nn.MaxPool2d(2))
        return layers + [nn.BatchNorm2d(cout), nn.ReLU()]

    stem, w1, w2, w3 = widths
    return nn.Sequential(
        *conv_bn(3, stem, pool=True),                               # 32x32 -> 16x16
        *conv_bn(stem, w1, pool=True), *conv_bn(w1, w1, pool=False),  # -> 8x8
        *conv_bn(w1, w2, pool=True), *conv_bn(w2, w2, pool=False),    # -> 4x4
        *conv_bn(w2, w3, pool=True), *conv_bn(w3, w3, pool=False),    # -> 2x2
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(w3, classes),
    )
