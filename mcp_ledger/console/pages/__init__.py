"""One module per console page: its routes, what it reads and the commands it sends."""
