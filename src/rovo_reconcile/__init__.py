"""rovo-reconcile: Atlassian Rovo MCP server settings and IP allowlists as code."""

__all__ = ["__version__"]

__version__ = "0.1.0"
