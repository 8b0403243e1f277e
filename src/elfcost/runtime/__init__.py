"""The running process: what the kernel says a process costs, attributed to its ELF objects.

`smaps` and `auxv` parse text and bytes, `pagemap` classifies per-page flags, `attribute` joins
them with the ELF model into a `records.Measurement`; `launch`, `procfs` and `measure` are the
edges that start processes and read /proc.
"""
