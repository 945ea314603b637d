"""The event-store side of MCP tasks: the task stream log the API's task service uses."""
