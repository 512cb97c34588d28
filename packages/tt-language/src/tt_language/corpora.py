"""Text corpora: TinyTalks (question/answer pairs) and Tiny Shakespeare.

Files are found like every TinyTorch data set (tt-data's :func:`tt_data.download.fetch`):
``$TT_DATA_DIR/<folder>/<file>``, then the user cache, then a download checked by sha256.

Also here: :func:`random_windows`, the batches a language model trains on (random slices of
a long id array and the same slices shifted by one).
"""

from __future__ import annotations

import numpy as np
from tt_core.errors import ArgumentError, TinyTorchError
from tt_data.download import RemoteFile, fetch

SHAKESPEARE = RemoteFile(
    "input.txt", "tinyshakespeare",
    urls=("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",),
    sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed", size=1_115_394,
)

_TINYTALKS_HOME = "https://raw.githubusercontent.com/MLSysBook/TinyTorch/main/datasets/tinytalks/"
TINYTALKS_SPLITS = {
    "train": "734520b4597276ba75949402962ecb94c5e463ed8af1460eac86fbba2a1922be",
    "val": "938da1b38d15c1f253bd3a6deb4f546df73d6a5e456d1f6220db280118819c1d",
    "test": "4a44d204594c7f0a31202758de75af7fc8a1d17565423004ce8dd9d28bea99cb",
}


def tinytalks_file(split: str) -> RemoteFile:
    """The file of one TinyTalks split.

    Raises:
        ArgumentError: ``split`` is not ``"train"``, ``"val"`` or ``"test"`` (a ValueError too).
    """
    if split not in TINYTALKS_SPLITS:
        raise ArgumentError(f"TinyTalks split must be one of {', '.join(TINYTALKS_SPLITS)}, got {split!r}")
    return RemoteFile(f"{split}.txt", "tinytalks/splits", urls=(f"{_TINYTALKS_HOME}splits/{split}.txt",),
                      sha256=TINYTALKS_SPLITS[split])


def parse_qa(text: str) -> list[tuple[str, str]]:
    """``Q: ...`` / ``A: ...`` blocks separated by blank lines -> [(question, answer), ...]."""
    pairs = []
    for block in text.strip().split("\n\n"):
        lines = block.strip().split("\n")
        if len(lines) != 2 or not lines[0].startswith("Q: ") or not lines[1].startswith("A: "):
            raise TinyTorchError(f"a TinyTalks block must be a 'Q: ...' line and an 'A: ...' line, got {block!r}")
        pairs.append((lines[0][3:], lines[1][3:]))
    return pairs


def format_qa(question: str, answer: str = "") -> str:
    """One pair as the model sees it; with no answer, the prompt that asks for one."""
    return f"Q: {question}\nA: {answer}\n\n" if answer else f"Q: {question}\nA:"


def tinytalks(split: str = "train", download: bool = True) -> list[tuple[str, str]]:
    """TinyTalks v1 question/answer pairs of one split (train 210, val 45, test 46 pairs).

    ``tinytalks.data_files()`` lists the files of every split, for ``tt_data.require`` (the
    component ``function:require_data``) to check before a run.

    Raises:
        ArgumentError: an unknown ``split``.
        DataError: a split's file is missing (and cannot be downloaded) or corrupt.

    Examples:
        >>> pairs = tinytalks("train")                                 # doctest: +SKIP
        >>> pairs[0]                                                   # doctest: +SKIP
        ('Where do you watch movies?', 'You watch movies at a theater or at home.')
    """
    path = fetch(tinytalks_file(split), download=download)
    return parse_qa(path.read_text(encoding="utf-8"))


def tinyshakespeare(split: str | None = None, download: bool = True, val_fraction: float = 0.1) -> str:
    """Tiny Shakespeare (1,115,394 characters). ``split``: None for the whole text, or
    ``"train"`` / ``"val"`` for the first 90% / last 10% (nanoGPT's split).

    ``tinyshakespeare.data_files()`` lists its one file, for ``tt_data.require``.

    Raises:
        ArgumentError: an unknown ``split``, or a ``val_fraction`` outside (0, 1); both
            before any file is read.
        DataError: the file is missing (and cannot be downloaded) or corrupt.
    """
    if split not in (None, "train", "val"):
        raise ArgumentError(f"Tiny Shakespeare split must be None, 'train' or 'val', got {split!r}")
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0 < val_fraction < 1:
        raise ArgumentError(f"val_fraction must be a number in (0, 1), got {val_fraction!r}")
    text = fetch(SHAKESPEARE, download=download).read_text(encoding="utf-8")
    if split is None:
        return text
    cut = int(len(text) * (1 - val_fraction))
    return text[:cut] if split == "train" else text[cut:]



def random_windows(ids: np.ndarray, block_size: int, batch_size: int, rng: np.random.Generator):
    """``batch_size`` random windows of ``block_size`` ids and their next-token targets:
    ``(x, y)`` of shape (batch_size, block_size) with ``y[:, t] = ids[start + t + 1]``."""
    if len(ids) <= block_size:
        raise TinyTorchError(f"a corpus of {len(ids)} tokens is too short for windows of {block_size} + 1")
    windows = np.lib.stride_tricks.sliding_window_view(ids, block_size + 1)
    picked = windows[rng.integers(0, len(windows), batch_size)]
    return picked[:, :-1], picked[:, 1:]


# the files each corpus reads, for ``tt_data.require`` (which checks them all before training)
tinytalks.data_files = lambda: tuple(tinytalks_file(split) for split in TINYTALKS_SPLITS)
tinyshakespeare.data_files = lambda: (SHAKESPEARE,)
