"""The policy layer: YAML source with marks, safety checks, the JSON Schema, semantic rules,
canonical domains and addresses, and the model that desired and live state share."""
