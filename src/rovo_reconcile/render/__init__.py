"""Pure renderers: data in, text out. Nothing here reads files or talks to the network."""
