"""`adopt`: rewrite policy files so they plan to no changes against live, comments kept.

run.py        read live, rewrite, re-load and re-plan the new text, write atomically
rewrite.py    one file: the plan's changes read backwards, as edits of its nodes
yaml_text.py  span edits of a YAML text: everything not edited stays byte for byte
"""

from rovo_reconcile.adopt.run import AdoptRun, FileAdoption, adopt_policies, write_adopted

__all__ = ["AdoptRun", "FileAdoption", "adopt_policies", "write_adopted"]
