"""Service kit: what every Microtask Engine service is built from."""
