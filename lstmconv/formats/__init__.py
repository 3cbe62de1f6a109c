"""One module per format; each is imported only when its format is used (see registry)."""
