"""Checks of the repository: layers, packaging, translations, requirements."""
