"""Bundled media (the demo clip) and the scripts that build it, installed as ``emolens.assets``."""
