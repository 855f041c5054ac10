"""Example downstream package: edges through cyconv's C-level API."""

from ._sobel import sobel_magnitude

__all__ = ["sobel_magnitude"]
