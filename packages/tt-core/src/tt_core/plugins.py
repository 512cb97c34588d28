"""The plugin machinery: one pluggy project, ``tinytorch``, and the component registry.

Every package of TinyTorch (and any third-party package) declares a module of hook
implementations under the entry-point group ``tinytorch``::

    [project.entry-points.tinytorch]
    tt-learn = "tt_learn._plugin"

and in that module::

    from tt_core import hookimpl

    @hookimpl
    def tt_register_components(registry):
        registry.register("loss", "MSELoss", MSELoss)

Plugins are loaded once, lazily, the first time something asks for the registry
(:func:`get_registry`). A plugin that fails to import or raises in its hook is recorded with
its error and contributes nothing; the others still load. ``TT_DISABLE_PLUGINS`` (a comma
list of entry-point or distribution names) blocks plugins, except tt-core. When two
distributions provide the same component, the built-in one (from TinyTorch's own packages,
:data:`BUILTIN_DISTRIBUTIONS`) is used unless ``TT_PROVIDERS`` picks another:
``TT_PROVIDERS="layer:Linear=my-linear,op:conv2d=fast-conv"`` picks single components, and a
bare distribution name, ``TT_PROVIDERS="my-tinytorch"``, everything that distribution
implements (a stub that still raises ``NotImplementedError`` is skipped, so the built-in one
fills the gap). Distribution names are compared in their normalised form (``My_Plugin`` is
``my-plugin``).
"""

from __future__ import annotations

import ast
import difflib
import functools
import inspect
import os
import re
import textwrap
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import pluggy

from . import dispatch
from .errors import TinyTorchError
from .kinds import KINDS

PROJECT = "tinytorch"
ENTRY_POINT_GROUP = "tinytorch"
CORE_DISTRIBUTION = "tt-core"
BUILTIN_DISTRIBUTIONS = frozenset({"tt-core", "tt-learn", "tt-data", "tt-language", "tt-perf", "tt-milestones"})

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class HookSpecs:
    """The two hooks of TinyTorch. Both hand the plugin a registry to fill."""

    @hookspec
    def tt_register_components(self, registry: "ComponentRegistrar") -> None:
        """Register components: ``registry.register(kind, name, obj)``.

        The kinds and their contracts are in :data:`tt_core.kinds.KINDS`; a plugin adds a kind
        with ``registry.register("kind", name, contract)``.
        """

    @hookspec
    def tt_register_milestones(self, registry: Any) -> None:
        """Register milestone specs: ``registry.register(spec)`` (see tt-milestones)."""


@dataclass(frozen=True)
class Component:
    """One provider of one component."""

    kind: str
    name: str
    obj: Any
    dist: str
    version: str = field(default="", compare=False)

    @functools.cached_property
    def implemented(self) -> bool:
        """False while the component is a stub that raises NotImplementedError (see :func:`is_implemented`)."""
        return _is_builtin(self.dist) or is_implemented(self.obj)

    def __str__(self) -> str:
        return f"{self.kind}:{self.name} from {self.dist}"


def _is_stub(function: Callable) -> bool:
    """Whether ``function``'s body is only a docstring and ``raise NotImplementedError``."""
    function = inspect.unwrap(getattr(function, "__func__", function))
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return False
    if not tree.body or not isinstance(tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    body = tree.body[0].body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    if len(body) != 1 or not isinstance(body[0], ast.Raise) or body[0].exc is None:
        return False
    raised = body[0].exc.func if isinstance(body[0].exc, ast.Call) else body[0].exc
    return isinstance(raised, ast.Name) and raised.id == "NotImplementedError"


def is_implemented(obj: Any) -> bool:
    """False for a stub: a function whose body only raises NotImplementedError, a class that
    defines such a method itself, an Op whose kernel or a GradRule whose rule is one.

    Examples:
        >>> def relu(ctx, x):
        ...     \"\"\"Your ReLU kernel.\"\"\"
        ...     raise NotImplementedError
        >>> is_implemented(relu)
        False
    """
    if isinstance(obj, dispatch.Op):
        return is_implemented(obj.forward)
    if isinstance(obj, dispatch.GradRule):
        return is_implemented(obj.backward)
    if inspect.isclass(obj):
        methods = [v for v in vars(obj).values() if inspect.isfunction(getattr(v, "__func__", v))]
        return not any(_is_stub(m) for m in methods)
    if inspect.isfunction(obj) or inspect.ismethod(obj):
        return not _is_stub(obj)
    return True


@dataclass
class PluginInfo:
    """What the loader learned about one plugin (entry point)."""

    name: str
    dist: str
    version: str
    module: Any = None
    error: str | None = None  # it failed to import, or a hook raised: it contributes nothing
    components: dict[str, int] = field(default_factory=dict)
    pairing: list[str] = field(default_factory=list)  # its ops that could not be paired with a rule

    @property
    def problems(self) -> str | None:
        """Every load error of this plugin, one per line (None when there is none)."""
        return "\n".join(filter(None, [self.error, *self.pairing])) or None


class UnknownComponentError(TinyTorchError, KeyError):
    """No installed plugin provides the requested component."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ProviderChoiceError(TinyTorchError):
    """``TT_PROVIDERS`` or ``--use`` names a component or distribution that nobody provides."""


def _close(word: str, options) -> str:
    """`` (did you mean X?)`` for the closest of ``options``, or nothing."""
    near = difflib.get_close_matches(word, list(options), n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(near)}?)" if near else ""


def normalize_dist(name: str) -> str:
    """A distribution name in its normalised form (PEP 503): ``My_Plugin`` -> ``my-plugin``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _is_builtin(dist: str) -> bool:
    return dist in BUILTIN_DISTRIBUTIONS


def parse_provider_choices(text: str) -> tuple[dict[tuple[str, str], str], tuple[str, ...]]:
    """Parse the ``TT_PROVIDERS`` format, ``"kind:name=dist,dist"``: single choices, and bare
    distributions meaning every component they implement. Returns ``(choices, use)``.

    Examples:
        >>> parse_provider_choices("layer:Linear=my-linear, My_TinyTorch")
        ({('layer', 'Linear'): 'my-linear'}, ('my-tinytorch',))
    """
    choices: dict[tuple[str, str], str] = {}
    use: list[str] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, dist = (part.strip() for part in item.partition("="))
        if not sep and re.fullmatch(r"[A-Za-z0-9][\w.-]*", key):
            use.append(normalize_dist(key))
            continue
        kind, colon, name = (part.strip() for part in key.partition(":"))
        if not (sep and colon and kind and name and dist):
            raise ProviderChoiceError(
                f"TT_PROVIDERS entry {item!r} is neither 'kind:name=distribution' (for example "
                "'layer:Linear=my-linear') nor a distribution name (for example 'my-tinytorch')"
            )
        choices[(kind, name)] = normalize_dist(dist)
    return choices, tuple(dict.fromkeys(use))


class ComponentRegistry:
    """Components by kind and name, each with every distribution that provides it."""

    def __init__(self, choices: dict[tuple[str, str], str] | None = None, use: tuple[str, ...] = ()) -> None:
        self._providers: dict[tuple[str, str], list[Component]] = {}
        self.choices = dict(choices or {})
        self.use = tuple(normalize_dist(d) for d in use)

    # -- filling -------------------------------------------------------------------------
    def add(self, component: Component) -> None:
        """Add one provider of ``(component.kind, component.name)``."""
        self._providers.setdefault((component.kind, component.name), []).append(component)

    def registrar(self, dist: str, version: str = "") -> "ComponentRegistrar":
        """The object handed to distribution ``dist``'s ``tt_register_components`` hook."""
        return ComponentRegistrar(self, dist, version)

    def withdraw(self, dist: str) -> None:
        """Remove every component of distribution ``dist``."""
        for key in list(self._providers):
            kept = [c for c in self._providers[key] if c.dist != dist]
            if kept:
                self._providers[key] = kept
            else:
                del self._providers[key]

    # -- asking --------------------------------------------------------------------------
    def has(self, kind: str, name: str) -> bool:
        """Whether any installed plugin provides the component."""
        return (kind, name) in self._providers

    def providers(self, kind: str, name: str) -> list[Component]:
        """Every provider of the component, in load order."""
        return list(self._providers.get((kind, name), ()))

    def choose_with_reason(self, kind: str, name: str) -> tuple[Component, str]:
        """The provider in use and why: ``"choice"`` (``kind:name=dist``), ``"use"`` (a bare
        distribution), ``"builtin"`` or ``"first"`` (no built-in one: the first loaded).
        A provider that is still a stub is never chosen while another one exists."""
        providers = self._providers.get((kind, name))
        if not providers:
            known = ", ".join(self.names(kind)) or "none"
            raise UnknownComponentError(
                f"no installed plugin provides {kind} {name!r}{_close(name, self.names(kind))} (known {kind}s: {known})"
            )
        wanted = self.choices.get((kind, name))
        if wanted is not None:
            picked = [c for c in providers if c.dist == wanted]
            if not picked:
                raise UnknownComponentError(
                    f"TT_PROVIDERS picks {wanted!r} for {kind}:{name}, but the providers are: "
                    + ", ".join(c.dist for c in providers)
                )
            if picked[0].implemented:
                return picked[0], "choice"
        for dist in self.use:
            for component in providers:
                if component.dist == dist and component.implemented:
                    return component, "use"
        for component in providers:
            if _is_builtin(component.dist):
                return component, "builtin"
        implemented = [c for c in providers if c.implemented]
        return (implemented or providers)[0], "first"

    def chosen(self, kind: str, name: str) -> Component:
        """The provider in use: the user's choice, else an implemented component of a
        distribution in ``use``, else the built-in one, else the first."""
        return self.choose_with_reason(kind, name)[0]

    def reference(self, kind: str, name: str) -> Component | None:
        """The built-in provider of a component (what graders compare with), or None."""
        return next((c for c in self._providers.get((kind, name), ()) if _is_builtin(c.dist)), None)

    @staticmethod
    def is_builtin(dist: str) -> bool:
        """Whether ``dist`` is one of TinyTorch's own packages."""
        return _is_builtin(dist)

    def from_dist(self, dist: str) -> list[Component]:
        """Every component distribution ``dist`` provides, by kind and name."""
        dist = normalize_dist(dist)
        return sorted((c for c in self if c.dist == dist), key=lambda c: (c.kind, c.name))

    def dists(self) -> list[str]:
        """Every distribution that provides a component."""
        return sorted({c.dist for c in self})

    def validate_choices(self) -> None:
        """Raise :class:`ProviderChoiceError` for every choice that names nothing installed."""
        problems = []
        dists = self.dists()
        for (kind, name), dist in self.choices.items():
            if not self.has(kind, name):
                # a misspelt name is closest to names of its own kind (not to "example:<kind>:<Name>")
                names = [f"{kind}:{n}" for n in self.names(kind)] or [f"{k}:{n}" for k, n in self._providers]
                problems.append(f"{kind}:{name}={dist}: no installed plugin provides {kind}:{name}"
                                + _close(f"{kind}:{name}", names))
            elif dist not in {c.dist for c in self.providers(kind, name)}:
                problems.append(f"{kind}:{name}={dist}: {dist} does not provide it (its providers: "
                                f"{', '.join(c.dist for c in self.providers(kind, name))})")
        for dist in self.use:
            if dist not in dists:
                problems.append(f"{dist}: no installed distribution of that name provides components"
                                + _close(dist, dists) + f" (installed: {', '.join(dists)})")
        if problems:
            raise ProviderChoiceError("the provider choice names nothing installed:\n  " + "\n  ".join(problems))

    def known_kinds(self) -> dict[str, str]:
        """Every kind with its contract: tt-core's (:data:`KINDS`) and those plugins added."""
        return {**KINDS, **{name: str(self.get("kind", name)) for name in self.names("kind")}}

    def unknown_kinds(self) -> list[tuple[str, str]]:
        """``(distribution, kind)`` for every component of a kind nobody declared (a typo?)."""
        known = self.known_kinds()
        return sorted({(c.dist, c.kind) for c in self if c.kind not in known})

    def get(self, kind: str, name: str) -> Any:
        """The chosen provider's object (a class, a function, ...)."""
        return self.chosen(kind, name).obj

    def kinds(self) -> list[str]:
        """Every kind that has at least one component, sorted."""
        return sorted({kind for kind, _ in self._providers})

    def names(self, kind: str) -> list[str]:
        """The names of one kind's components, sorted."""
        return sorted(name for k, name in self._providers if k == kind)

    def items(self, kind: str) -> dict[str, Any]:
        """``{name: chosen object}`` for every component of one kind."""
        return {name: self.get(kind, name) for name in self.names(kind)}

    def namespace(self, kind: str) -> SimpleNamespace:
        """Attribute access to one kind: ``registry.namespace("layer").Linear``."""
        return SimpleNamespace(**self.items(kind))

    def overridden(self) -> list[tuple[str, str, list[str], str]]:
        """Components with more than one provider: (kind, name, providers, chosen)."""
        rows = []
        for (kind, name), providers in sorted(self._providers.items()):
            if len(providers) > 1:
                rows.append((kind, name, [c.dist for c in providers], self.chosen(kind, name).dist))
        return rows

    def __iter__(self) -> Iterator[Component]:
        """Every provider of every component."""
        for providers in self._providers.values():
            yield from providers


class ComponentRegistrar:
    """What a plugin's ``tt_register_components`` receives: stamps its distribution.

    Registrations are staged and committed only when the hook returns, so a plugin that
    raises half-way contributes nothing.
    """

    def __init__(self, registry: ComponentRegistry, dist: str, version: str = "") -> None:
        self._registry = registry
        self.dist = dist
        self.version = version
        self.staged: list[Component] = []

    def register(self, kind: str, name: str, obj: Any) -> Any:
        """Stage ``obj`` as component ``kind:name`` of this distribution; returns ``obj``.

        An ``op`` given as a bare kernel function becomes ``Op(kernel, saves=None)``, and a
        ``grad_rule`` given as a function becomes ``GradRule(rule)``; ``registry.get`` then
        returns the Op or GradRule.
        """
        if not (isinstance(kind, str) and kind and isinstance(name, str) and name):
            raise TinyTorchError(f"register(kind, name, obj) needs two non-empty strings, got {kind!r}, {name!r}")
        if any(c.kind == kind and c.name == name for c in self.staged):
            raise TinyTorchError(f"{self.dist} registers {kind}:{name} twice")
        if kind == "op" and not isinstance(obj, dispatch.Op):
            obj = dispatch.Op(obj, saves=None)
        elif kind == "grad_rule" and not isinstance(obj, dispatch.GradRule):
            obj = dispatch.GradRule(obj)
        elif kind == "kind" and not isinstance(obj, str):
            raise TinyTorchError(f"register('kind', {name!r}, contract): the contract must be a string, got {obj!r}")
        self.staged.append(Component(kind, name, obj, self.dist, self.version))
        return obj

    def commit(self) -> None:
        """Add the staged components to the registry (called when the hook returned)."""
        for component in self.staged:
            self._registry.add(component)


@dataclass
class PluginSystem:
    """The loaded plugins: the pluggy manager, the component registry, per-plugin info."""

    manager: pluggy.PluginManager
    registry: ComponentRegistry
    plugins: list[PluginInfo]
    bound_ops: dict[str, dispatch.BoundOp] = field(default_factory=dict)

    def call_each(
        self, hook_name: str, make_arg: Callable[[PluginInfo], Any], finish: Callable[[Any], None]
    ) -> list[PluginInfo]:
        """Call one hook plugin by plugin, recording (not raising) each plugin's failure;
        returns the plugins whose hook raised."""
        by_name = {info.name: info for info in self.plugins}
        failed = []
        for impl in getattr(self.manager.hook, hook_name).get_hookimpls():
            info = by_name[impl.plugin_name]
            arg = make_arg(info)
            try:
                impl.function(registry=arg)
            except Exception:  # a broken plugin must not break the others
                info.error = (info.error + "\n" if info.error else "") + _short_traceback()
                failed.append(info)
                continue
            finish(arg)
        return failed

    def bind_ops(self) -> None:
        """Pair every op's chosen kernel with its rule (:func:`tt_core.dispatch.bind`), record
        the pairings that could not work on the plugins at fault, and empty the op table."""
        for info in self.plugins:
            info.pairing = []
        by_dist = {info.dist: info for info in self.plugins}
        self.bound_ops = {}
        for name in self.registry.names("op"):
            self.bound_ops[name], problems = dispatch.bind(self.registry, name)
            for dist, message in problems:
                if dist in by_dist:
                    by_dist[dist].pairing.append(message)
        dispatch.reset_dispatch()

    def withdraw(self, info: PluginInfo) -> None:
        """Take back everything a plugin registered (one of its hooks raised)."""
        self.registry.withdraw(info.dist)
        info.components = {}
        self.bind_ops()


def _short_traceback() -> str:
    """The last frames of the exception being handled: enough to find a plugin's bug."""
    return traceback.format_exc(limit=-3).strip()


def disabled_plugins() -> set[str]:
    """The names in ``TT_DISABLE_PLUGINS`` (entry-point or normalised distribution names)."""
    return {normalize_dist(p.strip()) for p in os.environ.get("TT_DISABLE_PLUGINS", "").split(",") if p.strip()}


def _dist_name(ep: metadata.EntryPoint) -> str:
    return normalize_dist(ep.dist.name if ep.dist is not None else ep.name)


def _entry_points() -> list[metadata.EntryPoint]:
    """The ``tinytorch`` entry points in a fixed order: tt-core, TinyTorch's other packages,
    then third-party ones, each by name (so "the first provider" does not depend on sys.path)."""
    def order(ep: metadata.EntryPoint) -> tuple:
        dist = _dist_name(ep)
        return (dist != CORE_DISTRIBUTION, not _is_builtin(dist), dist, ep.name)

    return sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=order)


def load_plugins() -> PluginSystem:
    """Find, import and register every plugin. Prefer :func:`get_plugin_system` (cached)."""
    manager = pluggy.PluginManager(PROJECT)
    manager.add_hookspecs(HookSpecs)
    registry = ComponentRegistry(*parse_provider_choices(os.environ.get("TT_PROVIDERS", "")))
    blocked = disabled_plugins()
    plugins: list[PluginInfo] = []
    seen_dists: dict[str, PluginInfo] = {}
    for ep in _entry_points():
        dist = _dist_name(ep)
        version = ep.dist.version if ep.dist is not None else "?"
        if dist != CORE_DISTRIBUTION and (normalize_dist(ep.name) in blocked or dist in blocked):
            continue  # tt-core is the ground floor: never blocked
        if dist in seen_dists:
            first = seen_dists[dist]
            if ep.name != first.name:  # (the same entry point twice is one install seen twice)
                first.error = "\n".join(filter(None, [first.error, (
                    f"{dist} declares a second tinytorch entry point {ep.name!r}; only {first.name!r} "
                    "is loaded (one entry point per distribution)"
                )]))
            continue
        info = PluginInfo(name=ep.name, dist=dist, version=version)
        seen_dists[dist] = info
        try:
            info.module = ep.load()
            manager.register(info.module, name=ep.name)
        except Exception:
            info.module = None
            info.error = _short_traceback()
        plugins.append(info)
    if CORE_DISTRIBUTION not in seen_dists:  # running from a source tree, not installed
        from . import _plugin
        from .__about__ import __version__

        manager.register(_plugin, name=CORE_DISTRIBUTION)
        plugins.insert(0, PluginInfo(CORE_DISTRIBUTION, CORE_DISTRIBUTION, __version__, _plugin))

    system = PluginSystem(manager, registry, plugins)

    def finish(registrar: ComponentRegistrar) -> None:
        registrar.commit()
        info = next(p for p in plugins if p.dist == registrar.dist)
        for component in registrar.staged:
            info.components[component.kind] = info.components.get(component.kind, 0) + 1

    system.call_each("tt_register_components", lambda info: registry.registrar(info.dist, info.version), finish)
    registry.validate_choices()
    system.bind_ops()
    return system


_SYSTEM: PluginSystem | None = None
_LOADING = False


def get_plugin_system() -> PluginSystem:
    """The plugin system, loaded on first use and cached for the life of the process."""
    global _SYSTEM, _LOADING
    if _SYSTEM is None:
        if _LOADING:  # a plugin ran an op or asked for the registry while being loaded
            raise TinyTorchError(
                "the plugins are still loading: a plugin must not run ops or use the registry when it "
                "is imported or registers; do that inside the functions it registers"
            )
        _LOADING = True
        try:
            _SYSTEM = load_plugins()
        finally:
            _LOADING = False
    return _SYSTEM


def get_registry() -> ComponentRegistry:
    """The component registry of the installed plugins (loaded once, then cached)."""
    return get_plugin_system().registry


def choose(use=(), choices: dict[tuple[str, str], str] | None = None) -> ComponentRegistry:
    """Add provider choices to the loaded plugins, as ``TT_PROVIDERS`` does at load time:
    ``use`` distributions for everything they implement, ``choices`` per component. Raises
    :class:`ProviderChoiceError` when one names nothing installed (and then changes nothing).

    This is what ``tt-milestones run ID --use DIST`` calls before the run.
    """
    system = get_plugin_system()
    registry = system.registry
    before = (dict(registry.choices), registry.use)
    registry.choices.update(choices or {})
    registry.use = tuple(dict.fromkeys(registry.use + tuple(normalize_dist(d) for d in use)))
    try:
        registry.validate_choices()
    except ProviderChoiceError:
        registry.choices, registry.use = before
        raise
    system.bind_ops()
    return registry


def reset_plugins() -> None:
    """Forget the loaded plugins (tests, or after installing a package at run time)."""
    global _SYSTEM
    _SYSTEM = None
    dispatch.reset_dispatch()
