"""Hospital hotline bridge for Asterisk (AMI + FastAGI)."""

__version__ = "0.1.0"
