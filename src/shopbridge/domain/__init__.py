"""Pure business rules: no I/O, no frameworks, nothing of ours imported from outside domain/."""
