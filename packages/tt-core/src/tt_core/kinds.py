"""The kinds of component, each with its contract in one line (docs/components.md has them
in full). A plugin may add a kind: ``registry.register("kind", "mykind", "its contract")``, and
its grader: ``registry.register("checker", "mykind", check_mykind)``.
"""

from __future__ import annotations

KINDS: dict[str, str] = {
    "op": "an Op: forward(ctx, *arrays, **attrs) -> array, optionally backward(ctx, grad) -> one gradient "
          "per input, and the names the kernel saves on ctx",
    "grad_rule": "a GradRule for the op of the same name: backward(ctx, grad) -> one gradient per input "
                 "(None where ctx.needs[i] is False), reading only the standard context and the kernel's saves",
    "layer": "a tt_core.Module subclass: constructor arguments as the built-in's, the same parameter names "
             "and shapes, forward(*tensors) -> Tensor",
    "activation": "a parameter-free tt_core.Module subclass: forward(x) -> Tensor of x's shape and dtype",
    "loss": "a Module-like class: Loss(reduction='mean', ...)(input, target) -> Tensor (a scalar unless "
            "reduction='none')",
    "optimizer": "a tt_learn.Optimizer subclass: Optimizer(params, lr, ...), step(), zero_grad(), "
                 "state_dict() / load_state_dict()",
    "scheduler": "a tt_learn.LRScheduler subclass: Scheduler(optimizer, ...), step() sets each group's lr, "
                 "state_dict() / load_state_dict()",
    "dataset": "a catalogue entry: calling it (split=...) gives a data set of (image or sequence, label) "
               "arrays with the documented shapes and dtypes",
    "dataset_class": "a class whose instances have __len__ and __getitem__(i) -> tuple of arrays",
    "loader": "a class: Loader(dataset, batch_size, shuffle=..., drop_last=..., seed=...) iterable over "
              "batches of Tensors",
    "transform": "a callable class: Transform(...)(array or batch) -> array of the documented shape and dtype",
    "tokenizer": "a class with encode(text) -> list of ints, decode(ids) -> text and vocab_size",
    "model": "a tt_core.Module subclass built from a config (the GPT): forward(ids) -> logits",
    "metric": "a function of predictions and targets -> a float (or an array for a confusion matrix)",
    "function": "a plain function; its contract is the built-in function's docstring",
    "trainer": "a class that trains a model with a loss and an optimizer over a loader",
    "autograd": "the autograd engine: an object with backward(tensor, gradient=None, retain_graph=False)",
    "perf": "an Act V tool (profiler, quantization, pruning, KV-cache generation, scorecard); its contract "
            "is the built-in's docstring",
    "checker": "a grader for the kind of the same name: fn(grader, yours, reference, name) -> None",
    "example": "how to build and feed one component for grading, named '<kind>:<Name>': fn(rng) -> Example",
    "kind": "a new kind of component: the object is its contract, one line of text",
}
