"""Benchmarks for sessionkit: ``python -m benchmarks [--quick]`` from the repository root."""
