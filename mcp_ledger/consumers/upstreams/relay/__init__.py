"""Server-to-client traffic of upstream calls relayed between workers and the API."""
