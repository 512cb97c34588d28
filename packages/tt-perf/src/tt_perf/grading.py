"""The checker of Act V's kind ``perf``: each component against its contract.

``check_perf(grader, yours, reference, name)`` (see :mod:`tt_core.grading`) runs the check
of the component's name on small models built afresh (an MLP, a CNN, a tiny GPT, weights
from the seeded generator):

- ``quantize_int8``: the float model is left as it was; the quantized model's state dict
  really holds int8 codes for the Linear/Conv2d weights (and is far smaller); its outputs
  stay close to the float model's, with the calibration data given as one array, a list of
  batches or ``(x, y)`` pairs;
- ``prune``: exactly ``round(s * n)`` of the ``n`` prunable weights become zero, the
  smallest in magnitude over all layers (or per layer with ``scope="layer"``), biases
  untouched; the returned pruner's ``apply()`` keeps the zeros after the weights change,
  and pruning further keeps the earlier zeros;
- ``kv_generate``: greedy generation with the cache gives the tokens of greedy decoding
  without it (the full forward pass at every step), for one prompt, a batch, and a list of
  prompts of different lengths;
- ``profile``: parameter count, activation bytes, and the FLOPs of every layer and in total
  equal the reference's on an MLP, a CNN and a tiny GPT.

The BLAS thread controls (``function:blas_threads``, ``function:threadpoolctl_available``) get
their own checks: the answer to whether threadpoolctl can be imported, and a block that
limits BLAS's threads inside (observed through threadpoolctl when it is installed), changes
nothing for ``None``, and without threadpoolctl raises.

The examples registered by :func:`register` build and feed the quantized layers for the layer
checker. The other ``perf`` components (the measurements and scorecard of milestone 06) are checked to
be callable with the reference's arguments; their results are measured by running the milestone.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import numpy as np
import tt_core
from tt_core import Linear, ReLU, Sequential, Tensor
from tt_core.grading import Example, Mismatch, register_graders
from tt_data import Conv2d, Flatten, MaxPool2d
from tt_data.grading import as_array, check_arguments, expect
from tt_language import GPT

QUANTIZED_ERROR = 0.05  # mean |quantized - float| / mean |float|: int8 gives ~0.01
QUANTIZED_SIZE = 0.5  # the quantized state dict's bytes / the float one's: int8 gives ~0.35


def _mlp() -> tuple[Sequential, tuple[int, ...]]:
    return Sequential(Linear(12, 32), ReLU(), Linear(32, 16), ReLU(), Linear(16, 5)), (12,)


def _cnn() -> tuple[Sequential, tuple[int, ...]]:
    return Sequential(Conv2d(2, 4, 3, padding=1), ReLU(), MaxPool2d(2), Flatten(), Linear(36, 5)), (2, 6, 6)


MODELS: dict[str, Callable[[], tuple[Sequential, tuple[int, ...]]]] = {"MLP": _mlp, "CNN": _cnn}


def _predict(model, x: np.ndarray) -> np.ndarray:
    """The model's output on ``x`` (features, or integer ids for a GPT) without recording a graph."""
    previous = tt_core.set_grad_enabled(False)
    try:
        return as_array(model(x if x.dtype.kind in "iu" else Tensor(x)))
    finally:
        tt_core.set_grad_enabled(previous)


def _weights(model) -> dict[str, np.ndarray]:
    """The weights of the Linear and Conv2d layers of ``model``, by layer name."""
    return {name: layer.weight.data for name, layer in model.named_modules() if isinstance(layer, (Linear, Conv2d))}


def _copy_state(model) -> dict[str, np.ndarray]:
    return {key: np.array(value) for key, value in model.state_dict().items()}


# ----------------------------------------------------------------------------------------
# quantize_int8
# ----------------------------------------------------------------------------------------


def _check_quantize(grader, quantize, reference) -> None:
    for label, build in MODELS.items():
        model, shape = build()
        model.eval()
        calibration = grader.rng.standard_normal((64, *shape)).astype(np.float32)
        x = grader.rng.standard_normal((32, *shape)).astype(np.float32)
        before = _copy_state(model)
        weights = sum(w.size for w in _weights(model).values())
        with grader.case(f"{label}: int8 codes really stored, the float model left as it was") as stored:
            quantized = quantize(model, [calibration])
            after = model.state_dict()
            expect(list(after) == list(before), "quantizing changed the float model's layers (its state dict now has "
                                                f"{', '.join(after)}): quantize a copy and leave the model as it was")
            for key, value in after.items():
                grader.compare(value, before[key], f"the float model's {key} after quantizing", rtol=0, atol=0,
                               against="before")
            state = {key: as_array(value) for key, value in quantized.state_dict().items() if value is not None}
            codes = sum(v.size for v in state.values() if v.dtype == np.int8)
            dtypes = sorted({str(v.dtype) for v in state.values()})
            expect(codes >= weights, f"the quantized state dict holds {codes} int8 values for the {weights} weights "
                                     f"of the Linear/Conv2d layers (its dtypes: {', '.join(dtypes)}): store the "
                                     "weights as int8 codes with a float scale")
            size, float_size = sum(v.nbytes for v in state.values()), sum(v.nbytes for v in before.values())
            expect(size <= QUANTIZED_SIZE * float_size,
                   f"the quantized state dict takes {size} bytes, {size / float_size:.0%} of the float model's "
                   f"{float_size}: int8 weights should make it about a third (are float copies kept as well?)")
        if not stored.passed:
            continue
        float_out = _predict(model, x)
        forms = {"a list of arrays": [calibration], "one array": calibration,
                 "(x, y) pairs": [(calibration[:32], np.zeros(32, np.int64)), (calibration[32:], np.zeros(32, np.int64))]}
        with grader.case(f"{label}: outputs close to the float model's (calibration as {', '.join(forms)})"):
            for form, data in forms.items():
                out = _predict(quantize(model, data) if form != "a list of arrays" else quantized, x)
                expect(out.shape == float_out.shape, f"calibrated with {form}: output shape {out.shape}, "
                                                     f"the float model's {float_out.shape}")
                error = float(np.abs(out - float_out).mean() / np.abs(float_out).mean())
                expect(error <= QUANTIZED_ERROR,
                       f"calibrated with {form}: the outputs differ from the float model's by {error:.1%} on average "
                       f"(int8 with per-channel scales gives about 1%; at most {QUANTIZED_ERROR:.0%} passes)")
        if reference is not None and label == "MLP":
            grader.time(lambda: quantize(model, [calibration]), lambda: reference(model, [calibration]))


# ----------------------------------------------------------------------------------------
# prune
# ----------------------------------------------------------------------------------------


def _zeros(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: w == 0 for name, w in weights.items()}


def _check_prune(grader, prune, reference) -> None:
    sparsity = float(np.round(grader.rng.uniform(0.3, 0.8), 2))
    model, _ = _mlp()
    original = {name: w.copy() for name, w in _weights(model).items()}
    biases = {name: layer.bias.data.copy() for name, layer in model.named_modules() if isinstance(layer, Linear)}
    total = sum(w.size for w in original.values())
    wanted = round(sparsity * total)

    with grader.case(f"prune(model, {sparsity}) zeroes {wanted} of the {total} weights, the smallest") as pruned:
        pruner = prune(model, sparsity)
        weights = _weights(model)
        zeros = sum(int(z.sum()) for z in _zeros(weights).values())
        expect(zeros == wanted, f"after prune(model, {sparsity}) {zeros} of the {total} weights are zero "
                                f"({zeros / total:.1%}), expected {wanted} ({sparsity:.0%})")
        removed = np.concatenate([np.abs(original[n][weights[n] == 0]) for n in weights])
        kept = np.concatenate([np.abs(original[n][weights[n] != 0]) for n in weights])
        expect(removed.max(initial=0) <= kept.min(initial=np.inf),
               f"a weight of magnitude {removed.max():.4g} was pruned while one of {kept.min():.4g} was kept: "
               "prune the smallest magnitudes over all layers at once (scope='global')")
        for name, layer in model.named_modules():
            if name in biases:
                grader.compare(layer.bias.data, biases[name], f"the bias of layer {name}", rtol=0, atol=0,
                               against="before pruning")
    if not pruned.passed:
        return

    with grader.case("the zeros stay zero: the pruner's apply() after the weights changed"):
        expect(callable(getattr(pruner, "apply", None)),
               f"prune() returned {type(pruner).__name__}: return the pruner, whose apply() re-zeroes the pruned "
               "weights after each optimizer step")
        mask = _zeros(_weights(model))
        for layer in (m for m in model.modules() if isinstance(m, Linear)):
            layer.weight.data = layer.weight.data + grader.rng.normal(0, 0.01, layer.weight.shape).astype(np.float32)
        moved = {name: w.copy() for name, w in _weights(model).items()}
        pruner.apply()
        for name, w in _weights(model).items():
            grader.compare(w, np.where(mask[name], 0, moved[name]).astype(w.dtype), f"layer {name}'s weight after apply()",
                           rtol=0, atol=0, against="the changed weights with the pruned ones zeroed")

    further = min(0.95, round(sparsity + 0.1, 2))
    with grader.case(f"pruning further ({further}) keeps the earlier zeros"):
        expect(callable(getattr(pruner, "prune", None)), f"prune() returned {type(pruner).__name__}, which has no "
                                                         "prune(sparsity) to prune further")
        earlier = _zeros(_weights(model))
        pruner.prune(further)
        now = _zeros(_weights(model))
        revived = sum(int((earlier[n] & ~now[n]).sum()) for n in now)
        expect(revived == 0, f"{revived} weights pruned before came back after pruning to {further}")
        count = sum(int(z.sum()) for z in now.values())
        expect(count == round(further * total), f"{count} weights are zero after pruning to {further}, "
                                                f"expected {round(further * total)}")

    with grader.case(f"scope='layer': every layer loses {sparsity:.0%} of its weights"):
        model, _ = _mlp()
        prune(model, sparsity, scope="layer")
        for name, w in _weights(model).items():
            count = int((w == 0).sum())
            expect(count == round(sparsity * w.size), f"layer {name} has {count} of its {w.size} weights zero, "
                                                      f"expected {round(sparsity * w.size)}")
    if reference is not None:
        grader.time(lambda: prune(_mlp()[0], sparsity), lambda: reference(_mlp()[0], sparsity))


# ----------------------------------------------------------------------------------------
# kv_generate
# ----------------------------------------------------------------------------------------


def _greedy(model, prompt: np.ndarray, count: int) -> np.ndarray:
    """Greedy decoding without any cache: the full forward pass for every new token."""
    ids = np.asarray(prompt, dtype=np.int64)
    for _ in range(count):
        ids = np.append(ids, _predict(model, ids[None])[0, -1].argmax())
    return ids


def _check_kv_generate(grader, kv_generate, reference) -> None:
    rng = grader.rng
    vocab = int(rng.integers(20, 40))
    model = GPT(vocab_size=vocab, block_size=32, num_layers=2, num_heads=2, embed_dim=16).eval()
    count = int(rng.integers(6, 12))
    prompts = [rng.integers(0, vocab, int(n)) for n in rng.integers(3, 9, 3)]

    with grader.case(f"one prompt of {len(prompts[0])} ids, {count} new tokens: the uncached greedy tokens"):
        got = as_array(kv_generate(model, prompts[0], count))
        grader.compare(got, _greedy(model, prompts[0], count), "the generated ids", against="greedy decoding without cache")
    with grader.case(f"a batch (3, {len(prompts[1])}): every row its own greedy tokens"):
        batch = np.stack([prompts[1], rng.integers(0, vocab, len(prompts[1])), prompts[1][::-1]])
        got = as_array(kv_generate(model, batch, count))
        grader.compare(got, np.stack([_greedy(model, row, count) for row in batch]), "the generated ids",
                       against="greedy decoding of each row alone")
    lengths = [len(p) for p in prompts]
    with grader.case(f"a list of prompts of lengths {lengths}: each its own greedy tokens"):
        got = kv_generate(model, prompts, count)
        expect(isinstance(got, (list, tuple)) and len(got) == len(prompts),
               f"a list of {len(prompts)} prompts gave {type(got).__name__}: give one id array per prompt")
        for i, (ids, prompt) in enumerate(zip(got, prompts)):
            grader.compare(as_array(ids), _greedy(model, prompt, count), f"the ids of prompt {i} (length {len(prompt)})",
                           against="greedy decoding of that prompt alone")
    with grader.case("no new tokens give the prompt back"):
        grader.compare(as_array(kv_generate(model, prompts[0], 0)), prompts[0], "the ids for 0 new tokens",
                       against="the prompt")
    if reference is not None:
        grader.time(lambda: kv_generate(model, prompts[0], count), lambda: reference(model, prompts[0], count))


# ----------------------------------------------------------------------------------------
# profile
# ----------------------------------------------------------------------------------------


def _tiny_gpt() -> tuple[GPT, tuple[int, ...]]:
    return GPT(vocab_size=17, block_size=16, num_layers=2, num_heads=2, embed_dim=8).eval(), (6,)


def _check_profile(grader, profile, reference) -> None:
    if reference is None:
        grader.skip("FLOP counts", "no built-in profiler to compare the counts with")
        return
    for label, build in {**MODELS, "GPT": _tiny_gpt}.items():
        model, shape = build()
        x = grader.rng.integers(0, 17, (2, *shape)) if label == "GPT" else \
            grader.rng.standard_normal((4, *shape)).astype(np.float32)
        with grader.case(f"{label}: parameters, activation bytes and FLOPs of every layer equal the reference's"):
            mine, theirs = profile(model, x, warmup=0, repeats=1), reference(model, x, warmup=0, repeats=1)
            counts = {layer.name: layer.flops for layer in mine.layers}
            for layer in theirs.layers:  # the first layer that differs is where to look
                expect(counts.get(layer.name, "missing") == layer.flops,
                       f"layer {layer.name} ({layer.type}): {counts.get(layer.name, 'missing')} FLOPs, "
                       f"the reference's {layer.flops}")
            for field in ("total_flops", "total_params", "activation_bytes"):
                expect(getattr(mine, field) == getattr(theirs, field),
                       f"{field} is {getattr(mine, field)}, the reference's {getattr(theirs, field)}")
        if label == "MLP":
            grader.time(lambda: profile(model, x, warmup=0, repeats=1), lambda: reference(model, x, warmup=0, repeats=1))


# ----------------------------------------------------------------------------------------
# The checker
# ----------------------------------------------------------------------------------------

CONTRACTS: dict[str, Callable] = {
    "quantize_int8": _check_quantize,
    "prune": _check_prune,
    "kv_generate": _check_kv_generate,
    "profile": _check_profile,
}
"""The contract check of each ``perf`` component that has one, by name."""


def check_perf(grader, yours, reference, name: str) -> None:
    """The checker of kind ``perf``: the contract of ``name`` (see the module docstring)."""
    checked = check_arguments(grader, yours, reference, name)
    contract = CONTRACTS.get(name)
    if contract is not None:
        contract(grader, yours, reference)
    else:
        with grader.case("can be called"):
            expect(callable(yours), f"perf:{name} is a {type(yours).__name__}: a perf component is a function or a class")
        compared = "beyond its arguments" if checked else "and no reference to compare its arguments with"
        grader.skip("results", f"perf:{name} has no contract check {compared}: milestone 06 measures what it gives")


# ----------------------------------------------------------------------------------------
# The BLAS thread controls
# ----------------------------------------------------------------------------------------


def _threadpoolctl_installed() -> bool:
    return importlib.util.find_spec("threadpoolctl") is not None


def check_threadpoolctl_available(grader, yours, reference, name: str) -> None:
    """The check of ``function:threadpoolctl_available``: True exactly when threadpoolctl imports."""
    installed = _threadpoolctl_installed()
    with grader.case(f"says whether threadpoolctl can be imported (here it {'can' if installed else 'cannot'})"):
        answer = yours()
        expect(isinstance(answer, (bool, np.bool_)), f"it returned {answer!r}: the answer is True or False")
        expect(bool(answer) == installed, f"it returned {answer}, but threadpoolctl "
                                          f"{'is' if installed else 'is not'} installed")


def _blas_threads() -> list[int]:
    """The thread count of every BLAS library loaded, as threadpoolctl sees it."""
    from threadpoolctl import threadpool_info

    return [info["num_threads"] for info in threadpool_info() if info.get("user_api") == "blas"]


def check_blas_threads(grader, yours, reference, name: str) -> None:
    """The check of ``function:blas_threads``: ``with blas_threads(count):``.

    ``blas_threads(None)`` is a block that changes nothing (a matrix product inside gives
    the same values). With threadpoolctl installed, BLAS runs on one thread inside
    ``blas_threads(1)`` and on as many as before after it; without it, entering
    ``blas_threads(2)`` raises an error (the thread count cannot change at run time).
    """
    check_arguments(grader, yours, reference, name)
    a, b = grader.rng.standard_normal((16, 8)), grader.rng.standard_normal((8, 4))
    with grader.case("blas_threads(None) is a block that changes nothing"):
        with yours(None):
            inside = a @ b
        grader.compare(inside, a @ b, "a matrix product inside the block", against="outside it")
    if not _threadpoolctl_installed():
        with grader.case("without threadpoolctl, entering blas_threads(2) raises"):
            try:
                with yours(2):
                    pass
            except Exception:  # noqa: BLE001 (an error saying threadpoolctl is needed)
                return
            raise Mismatch("blas_threads(2) ran without threadpoolctl, so the thread count did not change: raise an "
                           "error saying that threadpoolctl is needed (or OPENBLAS_NUM_THREADS before starting)")
        return
    with grader.case("inside blas_threads(1) BLAS uses one thread, after it as many as before"):
        before = _blas_threads()
        expect(bool(before), "threadpoolctl sees no BLAS library, so the thread count cannot be observed")
        with yours(1):
            inside = _blas_threads()
        expect(all(count == 1 for count in inside), f"inside blas_threads(1) BLAS uses {inside} threads")
        expect(_blas_threads() == before, f"after the block BLAS uses {_blas_threads()} threads, before it {before}: "
                                          "restore the limits on leaving")


FUNCTION_CHECKS: dict[str, Callable] = {
    "blas_threads": check_blas_threads,
    "threadpoolctl_available": check_threadpoolctl_available,
}
"""The check of each of tt-perf's functions (``checker:function:<name>``), by name."""


# ----------------------------------------------------------------------------------------
# Examples of the quantized layers
# ----------------------------------------------------------------------------------------


def _quantized(rng: np.random.Generator, weight_shape: tuple[int, ...], **kwargs) -> tuple[tuple, dict]:
    """Constructor arguments of a quantized layer: int8 codes, per-channel scales, a bias and
    the input's scale and zero point."""
    codes = rng.integers(-127, 128, weight_shape).astype(np.int8)
    scales = rng.uniform(0.001, 0.01, weight_shape[0]).astype(np.float32)
    bias = rng.standard_normal(weight_shape[0]).astype(np.float32)
    return (codes, scales, bias), {"input_scale": 0.05, "input_zero_point": 3.0, **kwargs}


def _quantized_linear(rng):
    args, kwargs = _quantized(rng, (4, 6))
    # integer inputs: a quantized layer is for inference and records no graph, so there is
    # no gradient to check (the example's floating inputs would get one)
    return Example(args=args, kwargs=kwargs, inputs=(rng.integers(0, 20, (3, 6)),))


def _quantized_conv2d(rng):
    args, kwargs = _quantized(rng, (4, 2, 3, 3), padding=1)
    return Example(args=args, kwargs=kwargs, inputs=(rng.integers(0, 20, (2, 2, 5, 5)),))


EXAMPLES: dict[str, Callable[[np.random.Generator], Example]] = {
    "layer:QuantizedLinear": _quantized_linear,
    "layer:QuantizedConv2d": _quantized_conv2d,
}
"""``example`` components, by ``kind:Name``."""


def register(registry) -> None:
    """Register tt-perf's checker, the checks of its functions and the examples of its layers
    with a plugin's registrar."""
    register_graders(registry, {"perf": check_perf}, EXAMPLES, FUNCTION_CHECKS)

