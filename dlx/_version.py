"""The version, in a module that imports nothing (the package's body may import its
submodules; they read the version here, not back through the package)."""

__version__ = "0.1.0"
