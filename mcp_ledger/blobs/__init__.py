"""Server-side blobs that signed pointers refer to, and one-time pointer tracking."""
