"""Benchmark scenarios, shipped with the package so that ``shopbridge bench`` runs them anywhere.

Results are printed as a table and written as JSON (``make bench`` writes them under bench/results/)."""
