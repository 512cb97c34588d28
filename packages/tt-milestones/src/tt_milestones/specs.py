"""The six historical milestones, as specs: what each needs, what it must reach, how to run it.

A milestone is runnable when every component it requires is in the registry; otherwise
``tt-milestones list`` shows it locked, with the package that provides what is missing.
"""

from __future__ import annotations

from .api import MilestoneSpec, Requirement


def _needs(package: str, *components: str) -> tuple[Requirement, ...]:
    """``_needs("tt-learn", "loss:MSELoss", ...)``: requirements provided by one package."""
    return tuple(Requirement(*component.split(":", 1), package=package) for component in components)


def _union(*groups: tuple[Requirement, ...]) -> tuple[Requirement, ...]:
    """The requirements of several groups, each once, in order."""
    return tuple(dict.fromkeys(r for group in groups for r in group))


PROFILER = _needs("tt-perf", "perf:profile")
"""Optional in milestones 01-05: with it, every report gets FLOPs and activation memory (see
:mod:`tt_milestones.systems`)."""


def _run(id_: str, slug: str) -> str:
    return f"tt_milestones.history.m{id_}_{slug}:run"


PERCEPTRON = MilestoneSpec(
    id="01",
    slug="perceptron",
    year=1957,
    title="The Perceptron",
    history=(
        "Frank Rosenblatt's perceptron learned its weights from examples with a rule so simple it was "
        "built in hardware: when it errs, add the misclassified input to the weights (or subtract it). "
        "Its convergence theorem promised that any linearly separable problem would be solved in a "
        "finite number of mistakes."
    ),
    requires=_needs("tt-core", "op:matmul", "layer:Linear"),
    optional=_needs("tt-learn", "autograd:engine", "loss:BCEWithLogitsLoss", "optimizer:SGD") + PROFILER,
    target="100% on linearly separable 2-D points; >= 98% test accuracy on the 8x8 digits 0 vs 1",
    run=_run("01", "perceptron"),
    quick_note="fewer epochs at most; both tasks still train to their targets",
)

XOR = MilestoneSpec(
    id="02",
    slug="xor",
    year=1969,
    title="The XOR Crisis",
    history=(
        "Minsky and Papert's book Perceptrons proved that a single layer cannot compute XOR, and funding "
        "for neural networks dried up for a decade. A hidden layer trained by gradient descent solves it, "
        "which is what backpropagation later made practical."
    ),
    requires=_needs("tt-core", "layer:Linear", "activation:Tanh", "activation:Sigmoid")
    + _needs("tt-learn", "autograd:engine", "loss:BCEWithLogitsLoss", "optimizer:SGD"),
    target="a single-layer network stays stuck (loss ~ 0.69, accuracy <= 75%); a 2-layer MLP reaches 100%",
    run=_run("02", "xor"),
    optional=PROFILER,
)

MLP = MilestoneSpec(
    id="03",
    slug="mlp",
    year=1986,
    title="Backpropagation and the MLP",
    history=(
        "Rumelhart, Hinton and Williams showed that backpropagating errors through hidden layers learns "
        "useful internal representations. Multi-layer perceptrons trained this way became the first "
        "networks to read handwritten digits reliably."
    ),
    requires=_needs("tt-core", "layer:Linear", "layer:Dropout", "activation:ReLU", "activation:Sigmoid")
    + _needs(
        "tt-learn", "autograd:engine", "loss:CrossEntropyLoss", "optimizer:Adam", "scheduler:CosineAnnealingLR",
        "scheduler:OneCycleLR", "trainer:Trainer", "metric:accuracy", "function:no_grad", "function:TimeBudget",
    )
    + _needs("tt-data", "dataset:tinydigits", "dataset:mnist", "loader:DataLoader", "function:require_data"),
    target=(
        ">= 97% test accuracy on TinyDigits; >= 98.5% test accuracy on MNIST within 30 s of training; a deep sigmoid MLP's first-layer "
        "gradient >= 1000x smaller than the same MLP's with ReLU"
    ),
    run=_run("03", "mlp"),
    optional=PROFILER,
    quick_note="TinyDigits only (with the sigmoid/ReLU contrast)",
)

CNN = MilestoneSpec(
    id="04",
    slug="cnn",
    year=1998,
    title="Convolutional Networks",
    history=(
        "LeCun's LeNet-5 shared small learned filters across the image, so a network could see shapes "
        "wherever they appear, and read cheques for banks. The same idea, deeper and with more data, "
        "won ImageNet in 2012 and started the deep-learning boom."
    ),
    requires=_needs("tt-core", "layer:Linear", "activation:ReLU")
    + _needs(
        "tt-learn", "autograd:engine", "loss:CrossEntropyLoss", "optimizer:SGD", "scheduler:OneCycleLR",
        "trainer:Trainer", "metric:accuracy", "function:no_grad", "function:TimeBudget",
    )
    + _needs(
        "tt-data", "op:conv2d", "layer:Conv2d", "layer:MaxPool2d", "layer:BatchNorm2d", "layer:Flatten",
        "dataset:tinydigits", "dataset:cifar10", "loader:DataLoader", "dataset_class:TensorDataset",
        "transform:RandomCrop", "transform:RandomHorizontalFlip", "transform:Compose", "transform:Normalize",
        "function:require_data",
    ),
    target=">= 97% test accuracy on TinyDigits (LeNet); >= 85% CIFAR-10 test accuracy within 20 minutes",
    run=_run("04", "cnn"),
    optional=PROFILER,
    quick_note="LeNet on TinyDigits only",
)

TRANSFORMER = MilestoneSpec(
    id="05",
    slug="transformer",
    year=2017,
    title="Attention Is All You Need",
    history=(
        "Vaswani and colleagues dropped recurrence and let every token attend to every other one, so "
        "sequence models could be trained in parallel on whole passages. Transformers became the "
        "architecture of every large language model since."
    ),
    requires=_needs("tt-core", "layer:Linear", "activation:GELU")
    + _needs(
        "tt-learn", "autograd:engine", "loss:CrossEntropyLoss", "optimizer:AdamW", "function:clip_grad_norm_",
        "function:no_grad", "function:GradientWatch", "function:WeightAverage",
    )
    + _needs(
        "tt-language", "tokenizer:char", "layer:Embedding", "layer:LayerNorm", "layer:PositionalEncoding",
        "layer:MultiHeadAttention", "layer:TransformerBlock", "model:GPT", "function:generate",
        "function:random_windows", "dataset:tinytalks", "dataset:tinyshakespeare",
    )
    + _needs("tt-data", "function:require_data"),
    target=(
        "100% on sequence reversal; TinyTalks training loss < 1.5; "
        "Tiny Shakespeare validation loss <= 1.50 within 15 minutes"
    ),
    run=_run("05", "transformer"),
    optional=PROFILER,
    quick_note="the attention proof and a short TinyTalks run whose loss must fall",
    options=("chat",),
)

OLYMPICS = MilestoneSpec(
    id="06",
    slug="olympics",
    year=2018,
    title="The Torch Olympics",
    history=(
        "MLPerf turned speed and efficiency claims into measured, comparable benchmarks, run the same "
        "way on every system. Here the models of the earlier milestones are profiled, pruned, weight-shared, "
        "entropy-coded and cached, and every ratio is measured on this machine."
    ),
    # it profiles and compresses the models of milestones 03-05, built by their own code
    requires=_union(
        MLP.requires, CNN.requires, TRANSFORMER.requires,
        _needs("tt-learn", "function:batches", "optimizer:Adam"),
        _needs(
            "tt-perf", "perf:profile", "perf:quantize_int8", "perf:prune", "perf:kv_generate", "perf:olympics",
            "perf:Arena", "perf:Submission", "perf:compress_classifier", "perf:classifier_accuracy",
            "perf:save_coded", "perf:distill", "perf:kv_cache_speedups", "perf:batched_throughput",
            "perf:acceleration_suite", "function:blas_threads", "function:threadpoolctl_available",
        ),
    ),
    target=(
        ">= 30x (MLP) and >= 16x (CNN) smaller on disk with <= 1 point accuracy loss; KV-cache generation >= 40x "
        "faster at 512 tokens; cached batched generation >= 12x the throughput of uncached one at a time"
    ),
    run=_run("06", "olympics"),
    quick_note="TinyDigits and a small GPT",
)

MILESTONES: tuple[MilestoneSpec, ...] = (PERCEPTRON, XOR, MLP, CNN, TRANSFORMER, OLYMPICS)
