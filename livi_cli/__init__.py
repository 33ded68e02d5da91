"""livi: find cover versions and duplicate recordings in your own music library."""

__version__ = "0.1.0"
