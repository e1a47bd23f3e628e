"""Fault plans (docs/faults.md): what to do to which calls of the mount, parsed and checked in
plan.py, content edits in mutate.py, matching, triggers and the fault log in engine.py."""
