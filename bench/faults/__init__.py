"""The fault campaign (``make faults``): the project's own processes under load, killed and
restarted at seeded random moments, their PostgreSQL and Redis restarted, hostile inputs fed
to the web server; then every accepted run is checked. See docs/reliability.md."""
