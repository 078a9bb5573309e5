"""Embedded stack launcher (``make run``) and developer helpers."""
