"""hub_rtc: safe real-time collaboration for JupyterHub."""

__version__ = "0.1.0"


def _jupyter_server_extension_points() -> list[dict[str, object]]:
    """jupyter_server finds the shared-server extension through this."""
    from .singleuser.app import HubRTCExtension

    return [{"module": "hub_rtc.singleuser.app", "app": HubRTCExtension}]
