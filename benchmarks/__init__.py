"""Benchmarks for curator: whole `curator` processes against a local feed server.

Run ``python -m benchmarks run`` from the repository root; see benchmarks/README.md. This
package lives beside curator in the repository and is not part of the wheel.
"""
