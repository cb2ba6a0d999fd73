"""The shipped models and their cards, installed as package data of ``emolens.models``."""
