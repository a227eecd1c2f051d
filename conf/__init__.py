"""dlx's Hydra configs, shipped inside the package as ``dlx.conf`` (``pkg://dlx.conf``)."""
