"""dlx's tuned sweeper (`hydra/sweeper=tuned`), in the namespace Hydra requires of every plugin it
instantiates (`hydra_plugins`). The code is :mod:`dlx.tuning`; dlx registers this class itself
when a sweep starts (`Plugins.register`), so an editable install, whose path hook Hydra's scan of
the namespace does not walk, finds it too."""

from dlx.tuning import TunedSweeper as _TunedSweeper


class TunedSweeper(_TunedSweeper):
    __doc__ = _TunedSweeper.__doc__
