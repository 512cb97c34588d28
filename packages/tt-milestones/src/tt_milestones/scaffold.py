"""``tt-milestones new DIR --act ACT``: a learner's own package for one Act, all stubs.

The package holds one stub per component the Act's built-in distribution registers, each with
the reference's signature, the contract in its docstring (the kind's contract from
:data:`tt_core.kinds.KINDS` and the reference's own docstring, without its examples) and a body
that raises ``NotImplementedError``. A stub counts as not implemented
(:func:`tt_core.plugins.is_implemented`), so the built-in component is used in its place and
every milestone keeps running while the learner replaces the stubs one at a time.

What is written::

    DIR/pyproject.toml              hatchling; the ``tinytorch`` entry point; depends on tt-core
                                    and the Act's package
    DIR/README.md                   the loop: implement, check, run --use, status
    DIR/src/<import_name>/__init__.py
    DIR/src/<import_name>/_plugin.py     registers every component
    DIR/src/<import_name>/<component>.py one per class or function component (``linear.py``)
    DIR/src/<import_name>/<family>.py    ops and gradient rules, one file per family: the
                                         reference module they come from (``ops.py``)

Classes derive from the reference's nearest public base class that is not itself a component
(``tt_core.Module`` for a layer, ``Optimizer`` for ``AdamW``), so a stub never inherits the
reference's own code; they get a stub for each public method (and each special method such as
``__len__``, and each hook the base class declares, such as an optimizer's ``_update``) that
the reference or its private bases define, and keep the reference's literal class attributes.
Ops are written as ``Op(kernel, saves=<the reference's saves>)``, gradient rules as
``GradRule(rule)``, a data-set object as a function with the signature of its call.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import keyword
import re
import sys
import textwrap
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

from tt_core.errors import TinyTorchError
from tt_core.plugins import Component, ComponentRegistry, normalize_dist

ACTS = {"core": "tt-core", "learn": "tt-learn", "data": "tt-data", "language": "tt-language", "perf": "tt-perf"}
ACT_NUMBERS = {"tt-core": "I", "tt-learn": "II", "tt-data": "III", "tt-language": "IV", "tt-perf": "V"}

# kinds that grade or describe components: the machinery, not exercises
NOT_EXERCISES = frozenset({"kind", "checker", "example"})
# kinds small enough to share a file: one file per family (the reference's module)
GROUPED_KINDS = ("op", "grad_rule")
# special methods that are part of a component's contract (a data set's __len__, ...)
CONTRACT_DUNDERS = frozenset({
    "__new__", "__init__", "__call__", "__len__", "__getitem__", "__iter__", "__next__", "__enter__", "__exit__",
    "__contains__",
})
GROUPED_TITLES = {"op": "ops (forward kernels)", "grad_rule": "gradient rules"}
COSMETIC = frozenset({"extra_repr", "__repr__", "__str__"})  # nothing to grade: never stubbed
DIST_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
DOC_SECTION = re.compile(r"^(Examples?|Doctests?):\s*$")


class ScaffoldError(TinyTorchError):
    """``new`` cannot write the package: a bad name or folder, or the Act is not installed."""


# -- names --------------------------------------------------------------------------------


def snake_case(name: str) -> str:
    """``BCEWithLogitsLoss`` -> ``bce_with_logits_loss``, ``StepLR`` -> ``step_lr``, ``ReLU`` ->
    ``relu``, ``RMSprop`` -> ``rmsprop``, ``AdamW`` -> ``adamw``: words split where a capitalised
    word starts, after an acronym of 3+ capitals, and before one of 2+ after a word of 3+ letters."""
    boundary = r"(?<=[a-z0-9])(?=[A-Z][a-z])|(?<=[A-Z]{3})(?=[A-Z][a-z])|(?<=[a-z]{3})(?=[A-Z]{2,}(?![a-z]))"
    words = re.sub(boundary, "_", name)
    return re.sub(r"\W+", "_", words).strip("_").lower()


def import_name_of(dist: str) -> str:
    """The import name of distribution ``dist``: ``my-tt-core`` -> ``my_tt_core``.

    Raises:
        ScaffoldError: ``dist`` is not a valid distribution name or gives no Python identifier.
    """
    if not DIST_NAME.match(dist):
        raise ScaffoldError(
            f"--name {dist!r} is not a distribution name: use letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit (for example my-tinytorch)"
        )
    module = re.sub(r"[-.]+", "_", dist).lower()
    if not module.isidentifier() or keyword.iskeyword(module):
        raise ScaffoldError(f"--name {dist!r} gives the import name {module!r}, which Python cannot import: "
                            "start it with a letter")
    return module


def _identifier(text: str) -> str:
    """``text`` with every run of non-word characters as ``_``, and ``_`` before a digit."""
    name = re.sub(r"\W+", "_", text)
    return f"_{name}" if name[:1].isdigit() else name


def _python_name(text: str, fallback: str) -> str:
    """``text`` as a Python identifier that shadows no keyword or builtin."""
    name = _identifier(text)
    if keyword.iskeyword(name) or hasattr(builtins, name):
        name = f"{fallback}_{name}".strip("_")
    return name


# -- docstrings and signatures ------------------------------------------------------------


def reference_doc(obj: Any) -> str:
    """``obj``'s own docstring, cleaned, without its examples (which would show the answers):
    an ``Examples:`` section is dropped up to the next section, a doctest up to a blank line."""
    doc = inspect.cleandoc(obj.__doc__) if isinstance(getattr(obj, "__doc__", None), str) else ""
    kept: list[str] = []
    skipping = None  # "section" inside an Examples section, "doctest" inside a doctest
    for line in doc.splitlines():
        if DOC_SECTION.match(line.strip()) and not line.startswith(" "):
            skipping = "section"
        elif line.lstrip().startswith(">>>"):
            skipping = skipping or "doctest"
        elif skipping == "section" and line.strip() and not line.startswith(" "):
            skipping = None  # the next section
        elif skipping == "doctest" and not line.strip():
            skipping = None
        if skipping is None:
            kept.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


def prose(text: str, indent: str = "") -> str:
    """A paragraph of running text, wrapped to fit a docstring under ``indent``."""
    return textwrap.fill(" ".join(text.split()), width=100 - len(indent), break_on_hyphens=False)


def docstring(paragraphs: list[str], indent: str) -> str:
    """A triple-quoted docstring of the non-empty ``paragraphs``, indented by ``indent`` (nothing
    when every paragraph is empty)."""
    text = "\n\n".join(p.strip() for p in paragraphs if p and p.strip()).replace('"""', "'''")
    if not text:
        return ""
    prefix = "r" if "\\" in text else ""
    lines = text.splitlines()
    ends_badly = text.endswith(('"', "\\"))  # would run into the closing quotes
    if len(lines) == 1 and len(indent) + len(lines[0]) + 6 <= 120 and not ends_badly:
        return f'{indent}{prefix}"""{lines[0]}"""\n'
    body = "\n".join(f"{indent}{line}" if line else "" for line in lines)
    return f'{indent}{prefix}"""{body.lstrip()}\n{indent}"""\n'


def source_literal(value: Any) -> str:
    """``value`` (a literal: number, string, tuple, ...) as source, strings in double quotes."""
    if isinstance(value, str) and '"' not in value and "\\" not in value and value.isprintable():
        return f'"{value}"'
    if isinstance(value, tuple):
        items = [source_literal(v) for v in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    if isinstance(value, list):
        return f"[{', '.join(source_literal(v) for v in value)}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{source_literal(k)}: {source_literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _annotation_text(annotation: Any) -> str:
    return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)


def format_signature(signature: inspect.Signature, indent: str = "", name: str = "", width: int = 120) -> str:
    """``"(self, x: Tensor, axis: int = -1) -> Tensor"``: a signature as ``def`` source (the
    annotations as written in the reference; the generated modules never evaluate them). When
    ``def name`` plus the signature would pass ``width``, one parameter a line under ``indent``.

    Examples:
        >>> format_signature(inspect.signature(lambda ctx, x, axis=-1: None))
        '(ctx, x, axis=-1)'
    """
    parts: list[str] = []
    previous = None
    for param in signature.parameters.values():
        if previous is inspect.Parameter.POSITIONAL_ONLY and param.kind is not inspect.Parameter.POSITIONAL_ONLY:
            parts.append("/")
        if param.kind is inspect.Parameter.KEYWORD_ONLY and previous not in (
            inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.VAR_POSITIONAL
        ):
            parts.append("*")
        text = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}.get(param.kind, "")
        text += param.name
        annotated = param.annotation is not inspect.Parameter.empty
        if annotated:
            text += f": {_annotation_text(param.annotation)}"
        if param.default is not inspect.Parameter.empty:
            text += f" = {source_literal(param.default)}" if annotated else f"={source_literal(param.default)}"
        parts.append(text)
        previous = param.kind
    if previous is inspect.Parameter.POSITIONAL_ONLY:
        parts.append("/")
    returns = ""
    if signature.return_annotation is not inspect.Signature.empty:
        returns = f" -> {_annotation_text(signature.return_annotation)}"
    one_line = f"({', '.join(parts)}){returns}"
    if len(f"{indent}def {name}{one_line}:") <= width or not parts:
        return one_line
    return "(\n" + "".join(f"{indent}    {part},\n" for part in parts) + f"{indent}){returns}"


def _check_defaults(signature: inspect.Signature, where: str) -> None:
    """Refuse defaults whose ``repr`` is not Python source (the stub could not reproduce them)."""
    for param in signature.parameters.values():
        if param.default is inspect.Parameter.empty:
            continue
        try:
            ast.literal_eval(repr(param.default))
        except (ValueError, SyntaxError):
            raise ScaffoldError(
                f"{where}: the default of {param.name!r} ({param.default!r}) cannot be written as source"
            ) from None


def public_path(obj: Any) -> tuple[str, str] | None:
    """``(module, name)`` to import ``obj`` from, preferring its package's top level
    (``tt_core.Module`` over ``tt_core.module.Module``); None if it cannot be imported by name."""
    module, name = getattr(obj, "__module__", None), getattr(obj, "__name__", None)
    if not (isinstance(module, str) and isinstance(name, str)):
        return None
    top = module.split(".")[0]
    for candidate in (top, module):
        try:
            if getattr(import_module(candidate), name, None) is obj:
                return candidate, name
        except ImportError:
            continue
    return None


def _annotation_imports(annotations: list[str], namespace: dict[str, Any]) -> set[str]:
    """Import lines for the names the annotation texts use, resolved in the reference's module
    globals ``namespace`` (for a ``TYPE_CHECKING`` block: the generated modules never evaluate
    annotations). A name with no import path of its own (a type alias) comes from that module."""
    names: set[str] = set()
    for text in annotations:
        try:
            tree = ast.parse(text, mode="eval")
        except SyntaxError:
            continue
        names.update(node.id for node in ast.walk(tree) if isinstance(node, ast.Name))
    lines = set()
    for name in sorted(names):
        obj = namespace.get(name)
        if obj is None or (hasattr(builtins, name) and getattr(builtins, name) is obj):
            continue
        if inspect.ismodule(obj):
            lines.add(f"import {obj.__name__}" + (f" as {name}" if obj.__name__ != name else ""))
            continue
        path = public_path(obj) or (namespace.get("__name__"), name)
        if path[0] is not None:
            lines.add(f"from {path[0]} import {path[1]}" + (f" as {name}" if path[1] != name else ""))
    return lines


def _annotations_of(signature: inspect.Signature) -> list[str]:
    found = [p.annotation for p in signature.parameters.values() if p.annotation is not inspect.Parameter.empty]
    if signature.return_annotation is not inspect.Signature.empty:
        found.append(signature.return_annotation)
    return [_annotation_text(a) for a in found]


# -- stubs --------------------------------------------------------------------------------


@dataclass
class SourceModule:
    """One module of the generated package, filled stub by stub, then rendered as source."""

    name: str
    doc: str
    imports: set[str] = field(default_factory=set)
    type_imports: set[str] = field(default_factory=set)
    blocks: list[str] = field(default_factory=list)
    registrations: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, name, attribute)

    def render(self) -> str:
        defined = {attr for _, _, attr in self.registrations}  # a class naming itself needs no import
        type_imports = {line for line in self.type_imports if line.split()[-1] not in defined}
        imports = self.imports | ({"from typing import TYPE_CHECKING"} if type_imports else set())
        head = [docstring([prose(p) for p in self.doc.split("\n\n")], ""), "from __future__ import annotations\n"]
        if imports:
            head.append(format_imports(imports))
        if type_imports:
            head.append("if TYPE_CHECKING:\n" + format_imports(type_imports, "    "))
        return "\n".join(head) + "\n\n" + "\n\n".join(self.blocks)


def format_imports(lines: set[str], indent: str = "") -> str:
    """Import lines (``import x [as y]``, ``from x import y [as z]``) as isort writes them: the
    standard library, then the rest; in each section ``import`` before ``from`` statements, and
    one ``from`` statement per module with its names sorted (constants, classes, functions)."""
    plain: set[str] = set()
    names: dict[str, set[str]] = {}
    for line in lines:
        words = line.split(maxsplit=3)
        if words[0] == "import":
            plain.add(" ".join(words[1:]))
        else:
            names.setdefault(words[1], set()).add(words[3])

    def by_type(name: str) -> tuple:
        return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)

    sections = []
    for stdlib in (True, False):
        def wanted(module: str, stdlib: bool = stdlib) -> bool:
            return (module.split(".")[0] in sys.stdlib_module_names) is stdlib

        section = [f"{indent}import {m}" for m in sorted(filter(wanted, plain), key=str.lower)]
        section += [
            f"{indent}from {m} import {', '.join(sorted(names[m], key=by_type))}"
            for m in sorted(filter(wanted, names), key=str.lower)
        ]
        if section:
            sections.append("\n".join(section) + "\n")
    return "\n".join(sections)


@dataclass
class Scaffold:
    """A learner's package, planned: its files (path -> text) and what it registers."""

    dist: str
    import_name: str
    act: str  # the Act's built-in distribution, e.g. "tt-core"
    files: dict[str, str]
    components: list[tuple[str, str, str, str]]  # (kind, name, module, attribute)


def _raise(kind: str, name: str, what: str) -> str:
    message = f"write {what} ({kind}:{name})"
    return "raise NotImplementedError(" + '"' + message.replace("\\", "\\\\").replace('"', '\\"') + '")'


def _contract(registry: ComponentRegistry, kind: str) -> str:
    from tt_core.kinds import KINDS

    if kind in KINDS:
        return prose(f"Kind ``{kind}``: {KINDS[kind]}.", "    ")
    if registry.has("kind", kind):
        return prose(f"Kind ``{kind}``: {registry.get('kind', kind)}.", "    ")
    return ""


def _function_stub(
    module: SourceModule, func: Any, def_name: str, kind: str, name: str, paragraphs: list[str],
    signature: inspect.Signature | None = None, indent: str = "", decorator: str = "", owner: str = "",
) -> str:
    """``def def_name<reference signature>: <doc> raise NotImplementedError`` (a method of class
    ``owner`` when ``indent`` is set)."""
    signature = signature if signature is not None else inspect.signature(func)
    _check_defaults(signature, f"{kind}:{name}")
    module.type_imports |= _annotation_imports(_annotations_of(signature), getattr(func, "__globals__", {}))
    head = f"{indent}{decorator}\n" if decorator else ""
    what = f"{owner}.{def_name}" if owner else def_name
    return (
        f"{head}{indent}def {def_name}{format_signature(signature, indent, def_name)}:\n"
        + docstring(paragraphs, indent + "    ")
        + f"{indent}    {_raise(kind, name, what)}\n"
    )


def _stub_base(cls: type, components: set[int]) -> tuple[type, list[type]]:
    """The stub's base class (the nearest public base of ``cls`` that is no component) and
    the classes before it in the MRO, whose methods the stub must provide."""
    own = [cls]
    for klass in cls.__mro__[1:]:
        if klass is object or (not klass.__name__.startswith("_") and id(klass) not in components
                               and public_path(klass) is not None):
            return klass, own
        own.append(klass)
    return object, own


def _methods_to_stub(own: list[type], base: type) -> dict[str, Any]:
    """``{name: raw attribute}``: the methods (functions, static, class methods, properties)
    the classes of ``own`` define that are public, contract dunders, or hooks of ``base``;
    the first definition in the MRO wins."""
    found: dict[str, Any] = {}
    for klass in own:
        for attr, value in vars(klass).items():
            if attr in found or attr in COSMETIC:
                continue
            if not isinstance(value, (staticmethod, classmethod, property)) and not inspect.isfunction(value):
                continue
            hook = attr.startswith("_") and not attr.startswith("__") and hasattr(base, attr)
            if not attr.startswith("_") or attr in CONTRACT_DUNDERS or hook:
                found[attr] = value
    return found


def _literal_attributes(own: list[type]) -> dict[str, Any]:
    """The class attributes with literal values (``kind = "char"``) the classes of ``own`` set."""
    found: dict[str, Any] = {}
    for klass in own:
        for attr, value in vars(klass).items():
            if attr.startswith("_") or attr in found or callable(value) or isinstance(value, property):
                continue
            try:
                ast.literal_eval(repr(value))
            except (ValueError, SyntaxError):
                continue
            found[attr] = value
    return found


def _class_stub(
    module: SourceModule, registry: ComponentRegistry, component: Component, cls: type, class_name: str,
    components: set[int], static: bool = False,
) -> str:
    """A class deriving from ``cls``'s stub base, with a stub per method to write. ``static``:
    every method becomes a static method (without ``self``), for a class that stands in for an
    object used only through its methods."""
    kind, name = component.kind, component.name
    base, own = _stub_base(cls, components)
    bases = ""
    if base is not object:
        where, base_name = public_path(base)
        module.imports.add(f"from {where} import {base_name}")
        bases = f"({base_name})"
    source = f"class {class_name}{bases}:\n" + docstring(
        [_contract(registry, kind), reference_doc(cls)], "    "
    )
    for attr, value in _literal_attributes(own).items():
        source += f"\n    {attr} = {source_literal(value)}\n"
    for attr, raw in _methods_to_stub(own, base).items():
        if isinstance(raw, property):
            func, decorator = raw.fget, "@property"
        elif isinstance(raw, (staticmethod, classmethod)):  # (__new__ is a static method without saying so)
            func, decorator = raw.__func__, "" if attr == "__new__" else f"@{type(raw).__name__}"
        else:
            func, decorator = raw, ""
        signature = inspect.signature(func)
        if static and not isinstance(raw, staticmethod) and attr != "__new__":
            signature = signature.replace(parameters=list(signature.parameters.values())[1:])
            decorator = "@staticmethod"
        source += "\n" + _function_stub(
            module, func, attr, kind, name, [reference_doc(func)], signature, indent="    ", decorator=decorator,
            owner=class_name,
        )
    return source


def _saves_line(saves: tuple[str, ...] | None) -> str:
    if saves is None:
        return ""
    if not saves:
        return "It saves nothing on ``ctx``: the rule reads only ctx.inputs, ctx.out, ctx.attrs and ctx.needs."
    names = ", ".join(f"``ctx.{s}``" for s in saves)
    return f"It must save on ``ctx`` what the gradient rule reads: {names}."


def _add_op(module: SourceModule, registry: ComponentRegistry, component: Component) -> None:
    """``def <name>_forward(ctx, ...)`` and ``<name>_op = Op(<name>_forward, saves=...)``; a
    reference op that carries its own rule gets a ``<name>_backward`` stub inside the Op too."""
    op, name = component.obj, component.name
    base = _identifier(name)
    module.imports.add("from tt_core import Op")
    source = _function_stub(
        module, op.forward, f"{base}_forward", "op", name,
        [f"The forward kernel of op {name!r}.", reference_doc(op.forward), prose(_saves_line(op.saves))],
    )
    rule = ""
    if op.backward is not None:
        source += "\n\n" + _function_stub(
            module, op.backward, f"{base}_backward", "op", name,
            [f"The gradient rule of op {name!r}: one gradient per input.", reference_doc(op.backward)],
        )
        rule = f", {base}_backward"
    unit = f"{base}_op = Op({base}_forward{rule}, saves={source_literal(op.saves)})"
    if len(unit) > 120:
        unit = f"{base}_op = Op(\n    {base}_forward{rule},\n    saves={source_literal(op.saves)},\n)"
    source += f"\n\n{unit}\n"
    module.blocks.append(source)
    module.registrations.append(("op", name, f"{base}_op"))


def _add_grad_rule(module: SourceModule, registry: ComponentRegistry, component: Component) -> None:
    """``def <name>_backward(ctx, grad)`` and ``<name>_rule = GradRule(<name>_backward)``."""
    rule, name = component.obj, component.name
    base = _identifier(name)
    module.imports.add("from tt_core import GradRule")
    reads = ""
    if rule.needs_saved():
        reads = "Besides ctx.inputs, ctx.out, ctx.attrs and ctx.needs it reads " + ", ".join(
            f"``ctx.{r}``" for r in rule.needs_saved()
        ) + ", which the kernel saves."
    source = _function_stub(
        module, rule.backward, f"{base}_backward", "grad_rule", name,
        [f"The gradient rule of op {name!r}.", reference_doc(rule.backward),
         prose(reads)],
    )
    source += f"\n\n{base}_rule = GradRule({base}_backward)\n"
    module.blocks.append(source)
    module.registrations.append(("grad_rule", name, f"{base}_rule"))


def _add_component(
    module: SourceModule, registry: ComponentRegistry, component: Component, components: set[int]
) -> None:
    """A class, a function, a callable object (as a function) or another object (as a class
    of static methods). ``components``: the ids of every registered object (no stub base)."""
    obj, kind, name = component.obj, component.kind, component.name
    if inspect.isclass(obj):
        symbol = obj.__name__
        module.blocks.append(_class_stub(module, registry, component, obj, symbol, components))
    elif inspect.isfunction(obj):
        symbol = _python_name(obj.__name__, kind)
        module.blocks.append(_function_stub(
            module, obj, symbol, kind, name, [_contract(registry, kind), reference_doc(obj)]
        ))
    elif callable(obj):  # an object called like a function (a data set of the catalogue)
        symbol = _python_name(name, kind)
        call = type(obj).__call__
        module.blocks.append(_function_stub(
            module, call, symbol, kind, name,
            [_contract(registry, kind), reference_doc(type(obj)), reference_doc(call)],
            signature=inspect.signature(obj),
        ))
    else:  # an object used through its methods (the autograd engine): a class of static methods
        symbol = "".join(part.capitalize() for part in snake_case(name).split("_")) or "Component"
        module.blocks.append(_class_stub(module, registry, component, type(obj), symbol, components, static=True))
    module.registrations.append((kind, name, symbol))


def _module_name(component: Component) -> str:
    """Which generated module holds ``component``: ops and rules by their reference module
    (``tt_core.ops`` -> ``ops``), the rest each in a module named after it."""
    obj = component.obj
    if component.kind in GROUPED_KINDS:
        func = obj.forward if component.kind == "op" else obj.backward
        return func.__module__.rsplit(".", 1)[-1].lstrip("_") or component.kind
    if inspect.isclass(obj) or inspect.isfunction(obj):
        return snake_case(obj.__name__)
    return snake_case(component.name)


def _assign_modules(components: list[Component]) -> dict[tuple[str, str], str]:
    """``(kind, name) -> module name``, unique per component outside the grouped kinds; a clash
    (two components wanting ``softmax``) is settled by the kind: ``activation_softmax``."""
    wanted = {(c.kind, c.name): _module_name(c) for c in components}
    taken: dict[str, set[str]] = {}
    for c in components:
        taken.setdefault(wanted[(c.kind, c.name)], set()).add("grouped" if c.kind in GROUPED_KINDS else c.kind + c.name)
    chosen = {}
    for c in components:
        module = wanted[(c.kind, c.name)]
        if not module.isidentifier() or keyword.iskeyword(module) or len(taken[module]) > 1:
            module = f"{c.kind}_{module}" if c.kind not in GROUPED_KINDS else f"{module}_{c.kind}s"
        chosen[(c.kind, c.name)] = module
    return chosen


# -- the package --------------------------------------------------------------------------


def _version_range(version: str) -> str:
    """``"0.1.3"`` -> ``">=0.1,<0.2"``: the compatible releases of an installed version."""
    parts = [int(p) for p in re.findall(r"\d+", version)[:2]] + [0, 0]
    major, minor = parts[0], parts[1]
    return f">={major}.{minor},<{major}.{minor + 1}" if major == 0 else f">={major}.{minor},<{major + 1}"


def _pyproject(dist: str, import_name: str, act: str, requirements: list[str]) -> str:
    deps = ", ".join(f'"{r}"' for r in requirements)
    return textwrap.dedent(f"""\
        [build-system]
        requires = ["hatchling>=1.20"]
        build-backend = "hatchling.build"

        [project]
        name = "{dist}"
        version = "0.1.0"
        description = "My own TinyTorch Act {ACT_NUMBERS[act]} ({act}), one component at a time"
        readme = "README.md"
        requires-python = ">=3.10"
        dependencies = [{deps}]

        # This table makes the package a TinyTorch plugin: tt-milestones finds it here.
        [project.entry-points.tinytorch]
        {dist} = "{import_name}._plugin"

        [tool.hatch.build.targets.wheel]
        packages = ["src/{import_name}"]
        """)


def _readme(dist: str, act: str) -> str:
    return textwrap.dedent(f"""\
        # {dist}

        My own implementation of TinyTorch's Act {ACT_NUMBERS[act]} ({act}). Every component starts as a
        stub that raises `NotImplementedError`, with its contract in the docstring; a stub counts as
        not implemented, so the built-in {act} component is used in its place and every milestone
        keeps running while the stubs are replaced one at a time.

        Install it once (TinyTorch finds it by its `tinytorch` entry point), then grade what is
        written against the built-in components, run history on it, and see how much is yours:

        ```
        pip install -e .
        tt-milestones check {dist}
        tt-milestones run 01 --use {dist}
        tt-milestones status
        ```
        """)


def _plugin_module(dist: str, modules: list[SourceModule]) -> str:
    registrations = [(m.name, kind, name, attr) for m in modules for kind, name, attr in m.registrations]
    doc = (
        f"The TinyTorch plugin of {dist}: registers every component of the package.\n\n"
        "tt-milestones finds this module through the ``tinytorch`` entry point in pyproject.toml. A "
        "component that still raises NotImplementedError counts as not implemented, and the built-in "
        "one is used instead."
    )
    names = sorted(m.name for m in modules)
    imports = "from . import " + ", ".join(names)
    if len(imports) > 120:
        imports = "from . import (\n" + "".join(f"    {n},\n" for n in names) + ")"
    lines = "".join(f'    registry.register("{kind}", "{name}", {module}.{attr})\n'
                    for module, kind, name, attr in registrations)
    hook = (
        "@hookimpl\ndef tt_register_components(registry):\n"
        '    """Register this package\'s components: ``registry.register(kind, name, obj)``."""\n'
    )
    head = docstring([prose(p) for p in doc.split("\n\n")], "")
    return f"{head}\nfrom tt_core import hookimpl\n\n{imports}\n\n\n{hook}{lines}"


def act_components(registry: ComponentRegistry, act: str) -> list[Component]:
    """The components the Act's built-in distribution registers that a learner writes.

    Raises:
        ScaffoldError: the Act's distribution is not installed (or provides nothing).
    """
    components = [c for c in registry.from_dist(act) if c.kind not in NOT_EXERCISES]
    if not components:
        raise ScaffoldError(
            f"{act} is not installed (or it is blocked by TT_DISABLE_PLUGINS, or failed to load: see "
            f"tt-milestones plugins), so Act {ACT_NUMBERS[act]} has no components to write stubs for: pip install {act}"
        )
    return components


def plan_package(registry: ComponentRegistry, act: str, dist: str | None = None) -> Scaffold:
    """Write (in memory) a learner's package for one Act.

    Args:
        registry: the loaded registry, holding the Act's built-in components.
        act: ``core``, ``learn``, ``data``, ``language`` or ``perf``.
        dist: the package's distribution name (default ``my-<act's distribution>``).

    Returns:
        The :class:`Scaffold`: every file's path (relative to the package folder) and text.

    Raises:
        ScaffoldError: an unknown Act, a bad or built-in name, the Act not installed, or a
            reference whose signature cannot be written as source.
    """
    if act not in ACTS:
        raise ScaffoldError(f"unknown Act {act!r}: choose one of {', '.join(ACTS)}")
    act_dist = ACTS[act]
    dist = normalize_dist(dist or f"my-{act_dist}")
    import_name = import_name_of(dist)
    if registry.is_builtin(dist):
        raise ScaffoldError(f"--name {dist!r} is a built-in TinyTorch distribution: pick a name of your own")
    components = act_components(registry, act_dist)
    objects = {id(c.obj) for c in registry}
    where = _assign_modules(components)
    modules: dict[str, SourceModule] = {}
    for component in components:
        name = where[(component.kind, component.name)]
        if name not in modules:
            if component.kind in GROUPED_KINDS:
                kinds = sorted({c.kind for c in components if where[(c.kind, c.name)] == name}, reverse=True)
                what = " and ".join(GROUPED_TITLES[k] for k in kinds)
                doc = "\n\n".join([
                    f"The {what} of {act_dist}'s {name} module, to write one by one (the built-in one is used "
                    "until each is)."
                ] + [_contract(registry, k) for k in kinds])
            else:
                doc = f"{component.kind}:{component.name}, to write (the built-in one is used until it is)."
            modules[name] = SourceModule(name, doc)
        module = modules[name]
        if component.kind == "op":
            _add_op(module, registry, component)
        elif component.kind == "grad_rule":
            _add_grad_rule(module, registry, component)
        else:
            _add_component(module, registry, component, objects)
    versions = {c.dist: c.version for c in registry}
    requirements = [f"{d}{_version_range(versions[d])}" if versions.get(d) else d
                    for d in dict.fromkeys(("tt-core", act_dist))]
    package = f"src/{import_name}"
    files = {
        "pyproject.toml": _pyproject(dist, import_name, act_dist, requirements),
        "README.md": _readme(dist, act_dist),
        f"{package}/__init__.py": docstring(
            [f"{dist}: my own TinyTorch Act {ACT_NUMBERS[act_dist]} ({act_dist}), one component at a time."], ""
        ) + '\n__version__ = "0.1.0"\n',
        f"{package}/_plugin.py": _plugin_module(dist, list(modules.values())),
    }
    for module in modules.values():
        files[f"{package}/{module.name}.py"] = module.render()
    for path, text in files.items():
        if path.endswith(".py"):
            compile(text, path, "exec")  # a generated module that is not valid Python is a bug here
    registered = [(kind, name, m.name, attr) for m in modules.values() for kind, name, attr in m.registrations]
    return Scaffold(dist, import_name, act_dist, files, registered)


def write_package(scaffold: Scaffold, directory: Path) -> list[Path]:
    """Write ``scaffold``'s files under ``directory``, which must not exist or be empty.

    Returns:
        The paths written.

    Raises:
        ScaffoldError: ``directory`` is a file, or a folder that is not empty.
    """
    if directory.exists() and not directory.is_dir():
        raise ScaffoldError(f"{directory} is a file: give a new folder for the package")
    if directory.is_dir() and any(directory.iterdir()):
        raise ScaffoldError(f"{directory} is not empty: give a new (or empty) folder, nothing there is overwritten")
    written = []
    for relative, text in scaffold.files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
