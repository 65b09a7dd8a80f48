"""segcolor: colorize black-and-white photos by routing each region to a specialist expert."""

__version__ = "0.1.0"
