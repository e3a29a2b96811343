# hub_rtc settings for a zero-to-jupyterhub deployment (docs/how-to/zero-to-jupyterhub.md).
#
# One file, read in two places, so that they cannot disagree:
# - by the hub: values.yaml's hub.extraConfig loads it, then runs the drop-in,
#   which reads service_name, bind_url, manage_hub_access, relay_route and
#   RTCPolicy.instructor_groups from it;
# - by every service replica: `hub-rtc serve --RTCService.config_file=<this file>`.
# Both mount it from the ConfigMap hub-rtc-config (hub-rtc.yaml) at /etc/hub-rtc/.
# Edit the ConfigMap's copy and this one together.
import os
from urllib.parse import quote

c = get_config()  # noqa: F821  (the traitlets config loader provides it)

# Where the hub, the proxy and the single-user servers reach the service: the
# Kubernetes Service in front of the replicas. The same URL as
# hub.services.rtc.url in values.yaml. Each replica listens on 0.0.0.0:10101
# instead: its command line overrides this.
c.RTCService.bind_url = "http://hub-rtc:10101"

# Where the replicas reach the proxy, which takes the relay and the document
# API on to the single-user servers. The chart's proxy-public Service, port 80,
# is the proxy's plain HTTP port unless proxy.https.type is letsencrypt: then
# proxy-public is Traefik, and the proxy itself is http://proxy-http:8000.
c.RTCService.upstream_url = "http://proxy-public"

# The service's own PostgreSQL database, shared by every replica. The password
# comes from the Secret hub-rtc through $HUB_RTC_DB_PASSWORD; the hub has no
# such variable and no need of the URL (it hands nothing to an external
# service).
password = quote(os.environ.get("HUB_RTC_DB_PASSWORD", ""), safe="")
c.RTCService.db_url = f"postgresql+psycopg://hub_rtc:{password}@postgres.example.internal:5432/hub_rtc"

# Replicas push changes of rights to each other over PostgreSQL LISTEN/NOTIFY
# (the default; said here because the Deployment runs more than one).
c.RTCService.replicas = True

# Policy: the same everywhere it is read. Every option is in
# docs/config-reference.md.
c.RTCPolicy.max_members_per_session = 6
c.RTCPolicy.max_sessions_per_user = 3
c.RTCPolicy.instructor_groups = {"cs101-staff": ["cs101"]}
