"""quanta: a self-serve data mesh platform."""
