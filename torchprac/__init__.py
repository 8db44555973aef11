"""torchprac: every practical lever of deep learning as a pluggable, measurable component."""

__version__ = "0.1.0"
