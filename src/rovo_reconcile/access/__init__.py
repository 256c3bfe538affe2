"""Effective access: would an AI tool's call get through both controls of an organization?

- `catalogue`: the AI tools rovo-reconcile knows (redirect URIs, published egress ranges),
  shipped as data with the source and date of every fact; never fetched at run time.
- `match`: whether an allowed-domain pattern admits a concrete redirect URI (the
  normaliser's own coverage test).
- `view`: one organization's two controls, each value with where it is decided (a policy
  file's line, or the live org).
- `answer`: pure: (view, app, tool, address, auth) -> Answer, a verdict per control.
- `render`: an Answer list as text or JSON.

Nothing here is imported by `validate` except `catalogue` and `match` (for `- tool:`
entries and the `access.ai-tool-egress` lint).
"""
