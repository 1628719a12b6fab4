"""Quality checks, quality metrics and column profiles."""
