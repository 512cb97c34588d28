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
:data:`BUILTIN_DISTRIBUTIONS`) is used unless ``TT_PROVIDERS`` picks another, e.g.
``TT_PROVIDERS="layer:Linear=my-linear,op:conv2d=fast-conv"``. Distribution names are
compared in their normalised form (``My_Plugin`` is ``my-plugin``).
"""

from __future__ import annotations

import os
import re
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import pluggy

from .errors import TinyTorchError

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

        Kinds in use: op, grad_rule, layer, activation, loss, optimizer, scheduler,
        dataset, transform, tokenizer, metric, ... (any string is allowed).
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


@dataclass
class PluginInfo:
    """What the loader learned about one plugin (entry point)."""

    name: str
    dist: str
    version: str
    module: Any = None
    error: str | None = None
    components: dict[str, int] = field(default_factory=dict)


class UnknownComponentError(TinyTorchError, KeyError):
    """No installed plugin provides the requested component."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def normalize_dist(name: str) -> str:
    """A distribution name in its normalised form (PEP 503): ``My_Plugin`` -> ``my-plugin``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _is_builtin(dist: str) -> bool:
    return dist in BUILTIN_DISTRIBUTIONS


def parse_provider_choices(text: str) -> dict[tuple[str, str], str]:
    """Parse ``"kind:name=dist,kind:name=dist"`` (the ``TT_PROVIDERS`` format)."""
    choices: dict[tuple[str, str], str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, dist = (part.strip() for part in item.partition("="))
        kind, colon, name = (part.strip() for part in key.partition(":"))
        if not (sep and colon and kind and name and dist):
            raise TinyTorchError(
                f"TT_PROVIDERS entry {item!r} is not of the form 'kind:name=distribution' "
                "(for example 'layer:Linear=my-linear')"
            )
        choices[(kind, name)] = normalize_dist(dist)
    return choices


class ComponentRegistry:
    """Components by kind and name, each with every distribution that provides it."""

    def __init__(self, choices: dict[tuple[str, str], str] | None = None) -> None:
        self._providers: dict[tuple[str, str], list[Component]] = {}
        self.choices = dict(choices or {})

    # -- filling -------------------------------------------------------------------------
    def add(self, component: Component) -> None:
        """Add one provider of ``(component.kind, component.name)``."""
        self._providers.setdefault((component.kind, component.name), []).append(component)

    def registrar(self, dist: str) -> "ComponentRegistrar":
        """The object handed to distribution ``dist``'s ``tt_register_components`` hook."""
        return ComponentRegistrar(self, dist)

    # -- asking --------------------------------------------------------------------------
    def has(self, kind: str, name: str) -> bool:
        """Whether any installed plugin provides the component."""
        return (kind, name) in self._providers

    def providers(self, kind: str, name: str) -> list[Component]:
        """Every provider of the component, in load order."""
        return list(self._providers.get((kind, name), ()))

    def chosen(self, kind: str, name: str) -> Component:
        """The provider in use: the user's choice, else the built-in one, else the first."""
        providers = self._providers.get((kind, name))
        if not providers:
            known = ", ".join(self.names(kind)) or "none"
            raise UnknownComponentError(
                f"no installed plugin provides {kind} {name!r} (known {kind}s: {known})"
            )
        wanted = self.choices.get((kind, name))
        if wanted is not None:
            for component in providers:
                if component.dist == wanted:
                    return component
            raise UnknownComponentError(
                f"TT_PROVIDERS picks {wanted!r} for {kind}:{name}, but the providers are: "
                + ", ".join(c.dist for c in providers)
            )
        for component in providers:
            if _is_builtin(component.dist):
                return component
        return providers[0]

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

    def __init__(self, registry: ComponentRegistry, dist: str) -> None:
        self._registry = registry
        self.dist = dist
        self.staged: list[Component] = []

    def register(self, kind: str, name: str, obj: Any) -> Any:
        """Stage ``obj`` as component ``kind:name`` of this distribution; returns ``obj``."""
        if not (isinstance(kind, str) and kind and isinstance(name, str) and name):
            raise TinyTorchError(f"register(kind, name, obj) needs two non-empty strings, got {kind!r}, {name!r}")
        if any(c.kind == kind and c.name == name for c in self.staged):
            raise TinyTorchError(f"{self.dist} registers {kind}:{name} twice")
        self.staged.append(Component(kind, name, obj, self.dist))
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

    def call_each(self, hook_name: str, make_arg: Callable[[PluginInfo], Any], finish: Callable[[Any], None]) -> None:
        """Call one hook plugin by plugin, recording (not raising) each plugin's failure."""
        by_name = {info.name: info for info in self.plugins}
        for impl in getattr(self.manager.hook, hook_name).get_hookimpls():
            info = by_name[impl.plugin_name]
            arg = make_arg(info)
            try:
                impl.function(registry=arg)
            except Exception:  # a broken plugin must not break the others
                info.error = (info.error + "\n" if info.error else "") + _short_traceback()
                continue
            finish(arg)


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
    registry = ComponentRegistry(parse_provider_choices(os.environ.get("TT_PROVIDERS", "")))
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

    system.call_each("tt_register_components", lambda info: registry.registrar(info.dist), finish)
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


def reset_plugins() -> None:
    """Forget the loaded plugins (tests, or after installing a package at run time)."""
    global _SYSTEM
    _SYSTEM = None
    from . import ops

    ops.reset_dispatch()
