"""The service's web layer: tornado handlers over the domain managers."""
