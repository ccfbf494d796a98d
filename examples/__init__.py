"""Runnable example apps."""
