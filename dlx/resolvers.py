"""dlx's OmegaConf resolvers used by the configs in conf/, registered on import: by
:mod:`dlx.config` (whatever validates a config composes it first) and :mod:`dlx.app`.

* ``${dlx_option:group}``: a group option's name, read without resolving the node;
* ``${dlx_tuned:table,name,reference}``: an experiment's tuned value for an optimizer.
"""

from __future__ import annotations

from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from dlx.errors import Rejected, UsageError


def _option(group: str, *, _root_) -> str:
    """``${dlx_option:model}``: the name of a group's option, read without resolving the node:
    its ``name``, else (a learner's option, whose file need not say it) the option Hydra chose
    (``runtime.choices``), else its ``_target_``'s class."""
    from dlx import learner

    name = OmegaConf.select(_root_, f"{group}.name", default=None)
    if name:
        return str(name)
    choice = OmegaConf.select(_root_, f"hydra.runtime.choices.{group}", default=None)
    if choice is None and HydraConfig.initialized():
        choice = HydraConfig.get().runtime.choices.get(group)
    if choice:
        return str(choice)
    target = OmegaConf.select(_root_, f"{group}.{learner.TARGET}", default=None)
    return learner.label_target(target).rpartition(":")[2] if target else group


OmegaConf.register_new_resolver("dlx_option", _option, replace=True)


def _tuned(table, name, reference=None):
    """``${dlx_tuned:${tuned_lr},${optimizer.name},...reference}``: an experiment's tuned value
    for the optimizer, looked up by the dlx option a learner's optimizer implements
    (``reference: adam``), else by its name."""
    key = reference or name
    if key not in table:
        known = ", ".join(table)
        hint = (f"; if {name} is your own, say which dlx optimizer it implements: "
                f"`reference: adam` in its file conf/optimizer/<name>.yaml (in the quick form, "
                f"a class named as dlx's option, mine.optim.Adam, implements it)") \
            if reference is None else ""
        raise Rejected(UsageError(f"this experiment has no tuned learning rate for {key!r} "
                                   f"(tuned: {known}){hint}; or set optimizer.lr=..."))
    return table[key]


OmegaConf.register_new_resolver("dlx_tuned", _tuned, replace=True)
