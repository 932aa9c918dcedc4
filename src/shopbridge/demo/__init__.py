"""The demo and the benchmarks: the bundled sandboxes and the hub on loopback ports, connected for real.

This is the one place outside the tests where the product and the sandboxes meet."""
