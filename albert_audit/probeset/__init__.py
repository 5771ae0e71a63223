"""Probe sets: YAML files -> validated, frozen probe sets -> the items table (the first stage of a run)."""
