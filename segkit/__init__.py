"""segkit: reproducible behavioral segmentation of clickstream events."""
from importlib.metadata import version as _version

__version__ = _version("segkit")
__all__ = ["__version__"]
