"""The milestone catalogue: every spec contributed through the ``tt_register_milestones`` hook.

Each plugin's hook receives a :class:`MilestoneRegistrar` and calls ``registry.register(spec)``
for each of its milestones. As with components, a plugin whose hook raises is recorded with its
error and contributes nothing (its components are withdrawn too), and one whose milestone takes
an id or slug that is already taken contributes no milestone; the others still load. The
catalogue is built once per loaded plugin system.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from tt_core.errors import TinyTorchError
from tt_core.plugins import ComponentRegistry, PluginInfo, PluginSystem, get_plugin_system

from .api import MilestoneSpec

BUILTIN = "tt-milestones"
RUN_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class UnknownMilestoneError(TinyTorchError, LookupError):
    """The id or slug the user typed names no milestone."""


class MilestoneRegistrar:
    """What a plugin's ``tt_register_milestones`` receives: stages specs under its distribution."""

    def __init__(self, dist: str) -> None:
        self.dist = dist
        self.staged: list[MilestoneSpec] = []

    def register(self, spec: MilestoneSpec) -> MilestoneSpec:
        """Add one milestone. Its id and slug must be new, and ``spec.run`` ``"module:function"``."""
        if not isinstance(spec, MilestoneSpec):
            raise TinyTorchError(f"register() needs a tt_milestones.api.MilestoneSpec, got {type(spec).__name__}")
        if not RUN_TARGET.match(spec.run):
            raise TinyTorchError(f"milestone {spec.id!r}: run must be 'package.module:function', got {spec.run!r}")
        _refuse_clash(spec, self.staged, self.dist)
        self.staged.append(spec)
        return spec


def _refuse_clash(spec: MilestoneSpec, known: Iterable[MilestoneSpec], owner_of: str | dict[str, str]) -> None:
    """Raise when ``spec`` has the id or slug of one of ``known``, naming its owner (the
    distribution, or a dict from milestone id to distribution)."""
    clash = next((s for s in known if s.id == spec.id or s.slug == spec.slug), None)
    if clash is not None:
        owner = owner_of if isinstance(owner_of, str) else owner_of[clash.id]
        raise TinyTorchError(
            f"milestone {spec.id!r} ({spec.slug}) clashes with {clash.id!r} ({clash.slug}) registered by "
            f"{owner}: pick an id and a slug of your own"
        )


@dataclass
class Catalogue:
    """The milestones of every loaded plugin, with the distribution each came from."""

    system: PluginSystem
    specs: dict[str, MilestoneSpec] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)

    def add(self, dist: str, specs: list[MilestoneSpec]) -> None:
        """Add one plugin's specs, all or none (none if one clashes with a milestone already in)."""
        for spec in specs:
            _refuse_clash(spec, self.specs.values(), self.origin)
        for spec in specs:
            self.specs[spec.id] = spec
            self.origin[spec.id] = dist

    @property
    def registry(self) -> ComponentRegistry:
        return self.system.registry

    @property
    def plugins(self) -> list[PluginInfo]:
        return self.system.plugins

    def all(self) -> list[MilestoneSpec]:
        return [self.specs[key] for key in sorted(self.specs)]

    def from_dist(self, dist: str) -> list[str]:
        return sorted(key for key, owner in self.origin.items() if owner == dist)

    def find(self, key: str) -> MilestoneSpec:
        """A milestone by id (``01``, also ``1``) or slug (``perceptron``)."""
        wanted = key.strip().lower()
        if wanted.isdigit():
            wanted = wanted.zfill(2)
        for spec in self.specs.values():
            if wanted in (spec.id.lower(), spec.slug.lower()):
                return spec
        valid = ", ".join(f"{s.id} ({s.slug})" for s in self.all()) or "none are installed"
        raise UnknownMilestoneError(f"unknown milestone {key!r}; valid ids: {valid}")


def collect_milestones(system: PluginSystem) -> Catalogue:
    """Call every plugin's ``tt_register_milestones`` hook, recording failures per plugin.

    tt-milestones' own specs go in first, so a plugin cannot take the id of a historical
    milestone: the plugin that clashes is recorded with the error and contributes nothing.
    """
    registrars: list[MilestoneRegistrar] = []
    failed = system.call_each("tt_register_milestones", lambda info: MilestoneRegistrar(info.dist), registrars.append)
    for info in failed:  # a plugin whose hook raised contributes nothing: its components go too
        system.withdraw(info)
    catalogue = Catalogue(system)
    infos = {info.dist: info for info in system.plugins}
    for registrar in sorted(registrars, key=lambda r: (r.dist != BUILTIN, r.dist)):
        try:
            catalogue.add(registrar.dist, registrar.staged)
        except TinyTorchError as error:
            info = infos[registrar.dist]
            info.error = "\n".join(filter(None, [info.error, str(error)]))
    return catalogue


_CATALOGUE: Catalogue | None = None


def get_catalogue() -> Catalogue:
    """The catalogue of the current plugin system (rebuilt after ``tt_core.reset_plugins()``)."""
    global _CATALOGUE
    system = get_plugin_system()
    if _CATALOGUE is None or _CATALOGUE.system is not system:
        _CATALOGUE = collect_milestones(system)
    return _CATALOGUE
