"""callrouter: a call-routing engine for clinical advice lines."""

__version__ = "0.1.0"
