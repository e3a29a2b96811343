"""Pictures of activity, drawn on the server as SVG (no script, no build step).

Pure functions of the activity the service stores: no tornado, no database.
Every chart is readable without colour (shapes and patterns differ, and
every bar carries its numbers as a tooltip and in a table beside it), and
every user-supplied string in it is escaped.
"""

from .timeline import Bucketed, bucket, timeline_svg

__all__ = ["Bucketed", "bucket", "timeline_svg"]
