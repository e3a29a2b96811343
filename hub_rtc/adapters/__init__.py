"""The service's adapters for the domain's ports: the hub over its REST API,
shared servers over HTTP and websockets (on behalf of a user), and the events
channel that pushes to them.  The domain sees only the protocols in
:mod:`hub_rtc.manager.ports`; these are what the service plugs in."""
