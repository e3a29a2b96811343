"""hub_rtc: safe real-time collaboration for JupyterHub."""

__version__ = "0.1.0"
